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


def results(spec):
    ws = pyhf.Workspace(spec)
    model = ws.model()
    data = pyhf.tensorlib.astensor(ws.data(model))
    out = {"par_names": list(model.config.par_names)}
    try:
        best, twice_nll = pyhf.infer.mle.fit(data, model, return_fitted_val=True)
        out["free_fit"] = {"bestfit": [float(v) for v in best], "twice_nll": float(twice_nll)}
        best, twice_nll = pyhf.infer.mle.fixed_poi_fit(1.0, data, model, return_fitted_val=True)
        out["fixed_fit_mu1"] = {"bestfit": [float(v) for v in best], "twice_nll": float(twice_nll)}
        cls_obs, cls_exp = pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde", return_expected_set=True)
        out["hypotest_mu1_qtilde"] = {"CLs_obs": float(cls_obs), "CLs_exp": [float(v) for v in cls_exp]}
        p0_obs, p0_exp = pyhf.infer.hypotest(0.0, data, model, test_stat="q0", return_expected_set=True)
        out["hypotest_mu0_q0"] = {"p0_obs": float(p0_obs), "p0_exp": [float(v) for v in p0_exp]}
    except Exception as e:  # a failed pyhf fit is recorded, not hidden
        out["error"] = f"{type(e).__name__}: {e}"
    return out


def main():
    pyhf.set_backend("jax", pyhf.optimize.scipy_optimizer(tolerance=1e-14))
    cases = []
    for path in sys.argv[1:]:
        with open(path) as f:
            spec = json.load(f)
        name = path.rsplit("/", 1)[-1].removesuffix(".json")
        cases.append({"name": name, "workspace": spec, "pyhf": results(spec)})
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
            "interpolation": {"normsys": "code4", "histosys": "code4p"},
            "cases": cases,
        },
        sys.stdout,
        indent=1,
    )


if __name__ == "__main__":
    main()
