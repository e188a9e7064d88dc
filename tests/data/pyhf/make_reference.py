"""pyhf's numbers for the differential tests (tests/differential.rs).

The workspaces come from the Rust generator (tests/support/workspaces.rs), written by

    cargo run --example workspaces -- random 0 39 /tmp/neos-random
    cargo run --example workspaces -- bimodal /tmp/neos-random/bimodal.json

and this script, run with pyhf 0.7.6 (jax 0.4.23 in double precision, numpy 1.26.4, scipy
1.11.4), writes tests/data/pyhf/random_workspaces.json:

    python tests/data/pyhf/make_reference.py /tmp/neos-random/random_{0..39}.json \
        /tmp/neos-random/bimodal.json > tests/data/pyhf/random_workspaces.json

Fits use SciPy's SLSQP on pyhf's jax backend, which gives it exact gradients, with a
tolerance of 1e-14: with numpy's finite-difference gradients SLSQP stops up to 1e-5 away from
the minimum in flat directions, which moves the expected CLs band by a few 1e-6. So a
difference between pyhf and neos is a difference of minima, not of convergence. CI needs no
Python: the output is kept in the repository.
"""

import json
import sys

import jax
import numpy
import pyhf
import scipy

jax.config.update("jax_enable_x64", True)


# pyhf's default interpolation codes, and the piecewise ones whose kinks at α = 0 the fits
# must handle.
SETTINGS = {
    "pyhf": {"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}},
    "pyhf_code1_code0": {"normsys": {"interpcode": "code1"}, "histosys": {"interpcode": "code0"}},
}


def results(spec, settings):
    ws = pyhf.Workspace(spec)
    model = ws.model(modifier_settings=settings)
    data = pyhf.tensorlib.astensor(ws.data(model))
    out = {"par_names": list(model.config.par_names)}
    try:
        best, twice_nll = pyhf.infer.mle.fit(data, model, return_fitted_val=True)
        out["free_fit"] = {"bestfit": [float(v) for v in best], "twice_nll": float(twice_nll)}
        best, twice_nll = pyhf.infer.mle.fixed_poi_fit(1.0, data, model, return_fitted_val=True)
        out["fixed_fit_mu1"] = {"bestfit": [float(v) for v in best], "twice_nll": float(twice_nll)}
        # The fits of the tests' Asimov data (pyhf's: the expected data at the fit with μ fixed),
        # so that a difference of CLs can be told from a difference of minima there.
        init, bounds, fixed = model.config.suggested_init(), model.config.suggested_bounds(), model.config.suggested_fixed()
        for mu, other, key in [(0.0, 1.0, "asimov_mu0"), (1.0, 0.0, "asimov_mu1")]:
            asimov = pyhf.infer.calculators.generate_asimov_data(mu, data, model, init, bounds, fixed)
            _, free = pyhf.infer.mle.fit(asimov, model, return_fitted_val=True)
            _, fixed_fit = pyhf.infer.mle.fixed_poi_fit(other, asimov, model, return_fitted_val=True)
            out[key] = {"free_twice_nll": float(free), f"mu{int(other)}_twice_nll": float(fixed_fit)}
        cls_obs, cls_exp = pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde", return_expected_set=True)
        out["hypotest_mu1_qtilde"] = {"CLs_obs": float(cls_obs), "CLs_exp": [float(v) for v in cls_exp]}
        p0_obs, p0_exp = pyhf.infer.hypotest(0.0, data, model, test_stat="q0", return_expected_set=True)
        out["hypotest_mu0_q0"] = {"p0_obs": float(p0_obs), "p0_exp": [float(v) for v in p0_exp]}
    except Exception as e:  # a failed pyhf fit is recorded, not hidden
        out["error"] = f"{type(e).__name__}: {e}"
    return out


def upper_limit(spec):
    """The 95% CL upper limits on μ (q̃), searched within the POI's bounds by pyhf's TOMS 748
    root finding. pyhf caches CLs by μ, which jax arrays cannot key, so this runs on the numpy
    backend, whose finite-difference gradients give limits to about 1e-4."""
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(solver_options={"ftol": 1e-14}))
    try:
        ws = pyhf.Workspace(spec)
        model = ws.model()
        data = ws.data(model)
        hi = model.config.suggested_bounds()[model.config.poi_index][1]
        obs, exp = pyhf.infer.intervals.upper_limits.toms748_scan(
            data, model, hi * 1e-6, hi, level=0.05, atol=1e-12, rtol=1e-10, test_stat="qtilde"
        )
        return {"obs": float(obs), "exp": [float(v) for v in exp]}
    except Exception as e:  # noqa: BLE001 - recorded: CLs may not reach 0.05 within the bounds
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
    finally:
        pyhf.set_backend("jax", pyhf.optimize.scipy_optimizer(tolerance=1e-14))


def main():
    pyhf.set_backend("jax", pyhf.optimize.scipy_optimizer(tolerance=1e-14))
    cases = []
    for path in sys.argv[1:]:
        with open(path) as f:
            spec = json.load(f)
        name = path.rsplit("/", 1)[-1].removesuffix(".json")
        case = {"name": name, "workspace": spec}
        for key, settings in SETTINGS.items():
            case[key] = results(spec, settings)
        case["pyhf"]["upper_limit"] = upper_limit(spec)
        cases.append(case)
    json.dump(
        {
            "description": "pyhf on the seeded random workspaces of tests/support/workspaces.rs and its bimodal one",
            "versions": {
                "pyhf": pyhf.__version__,
                "jax": jax.__version__,
                "numpy": numpy.__version__,
                "scipy": scipy.__version__,
            },
            "optimizer": "scipy SLSQP with jax gradients, tolerance 1e-14",
            "interpolation": SETTINGS,
            "cases": cases,
        },
        sys.stdout,
        indent=1,
    )


if __name__ == "__main__":
    main()
