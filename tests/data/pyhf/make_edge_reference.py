"""pyhf's verdicts and numbers on the edge cases of the workspace format (tests/edge.rs).

Each case is a small workspace that exercises one rule of pyhf's schema or model building:
names shared between modifier types and channels, zero and negative uncertainties,
measurement settings, degenerate models. For the cases pyhf reads, this records its fits,
CLs, p0 and upper limit; for the ones it refuses, its error. Cases that pyhf reads but neos
refuses on purpose (their meaning is ambiguous) say why in "neos_refuses".

Run with pyhf 0.7.6 (jax 0.4.23 in double precision, scipy 1.11.4):

    python tests/data/pyhf/make_edge_reference.py > tests/data/pyhf/edge_workspaces.json

CI needs no Python: the output is kept in the repository.
"""

import copy
import json
import warnings

import jax
import pyhf

jax.config.update("jax_enable_x64", True)
warnings.filterwarnings("ignore")
pyhf.set_backend("jax", pyhf.optimize.scipy_optimizer(solver_options={"ftol": 1e-14}))


def workspace(channels, observations, parameters=None, poi="mu"):
    return {
        "channels": channels,
        "observations": observations,
        "measurements": [{"name": "meas", "config": {"poi": poi, "parameters": parameters or []}}],
        "version": "1.0.0",
    }


def mu():
    return {"name": "mu", "type": "normfactor", "data": None}


def one_bin(s=5.0, b=50.0, n=52.0, bkg=None, sig=None, parameters=None):
    return workspace(
        [{"name": "sr", "samples": [
            {"name": "signal", "data": [s], "modifiers": sig if sig is not None else [mu()]},
            {"name": "background", "data": [b], "modifiers": bkg or []},
        ]}],
        [{"name": "sr", "data": [n]}],
        parameters,
    )


def two_bins(bkg, parameters=None):
    return workspace(
        [{"name": "sr", "samples": [
            {"name": "signal", "data": [5.0, 6.0], "modifiers": [mu()]},
            {"name": "background", "data": [50.0, 40.0], "modifiers": bkg},
        ]}],
        [{"name": "sr", "data": [55.0, 44.0]}],
        parameters,
    )


def two_channels(kind, data_a, data_b, bins_b=2):
    nominal_b = [30.0, 20.0, 10.0][:bins_b]
    return workspace(
        [
            {"name": "a", "samples": [
                {"name": "signal", "data": [5.0, 6.0], "modifiers": [mu()]},
                {"name": "background", "data": [50.0, 40.0], "modifiers": [{"name": "x", "type": kind, "data": data_a}]},
            ]},
            {"name": "b", "samples": [
                {"name": "background", "data": nominal_b, "modifiers": [{"name": "x", "type": kind, "data": data_b}]},
            ]},
        ],
        [{"name": "a", "data": [55.0, 44.0]}, {"name": "b", "data": [33.0, 18.0, 12.0][:bins_b]}],
    )


def normsys(name="syst", hi=1.1, lo=0.92):
    return {"name": name, "type": "normsys", "data": {"hi": hi, "lo": lo}}


def cases():
    """(name, workspace, what neos must do where pyhf reads it: None to agree, else why it refuses)."""
    out = []
    add = lambda name, ws, refuse=None: out.append((name, ws, refuse))

    # Workspaces pyhf reads: neos must give its numbers.
    add("normsys_and_histosys_share_a_name", two_bins([
        normsys("jes"),
        {"name": "jes", "type": "histosys", "data": {"hi_data": [52.0, 41.0], "lo_data": [49.0, 38.5]}},
    ]))
    add("staterror_across_channels_of_different_bins", two_channels("staterror", [5.0, 4.0], [3.0, 2.5, 2.0], 3))
    add("staterror_across_channels_of_equal_bins", two_channels("staterror", [5.0, 4.0], [3.0, 2.5]))
    add("shapefactor_across_channels", two_channels("shapefactor", None, None))
    add("staterror_zero", one_bin(bkg=[{"name": "stat", "type": "staterror", "data": [0.0]}]))
    add("staterror_negative", two_bins([{"name": "stat", "type": "staterror", "data": [-5.0, 4.0]}]))
    add("shapesys_zero", one_bin(bkg=[{"name": "ss", "type": "shapesys", "data": [0.0]}]))
    add("shapesys_negative", one_bin(bkg=[{"name": "ss", "type": "shapesys", "data": [-5.0]}]))
    add("staterror_and_shapesys_partly_zero", two_bins([
        {"name": "stat", "type": "staterror", "data": [5.0, 0.0]},
        {"name": "ss", "type": "shapesys", "data": [0.0, 4.0]},
    ]))
    add("shapesys_auxdata_from_the_measurement", one_bin(
        bkg=[{"name": "ss", "type": "shapesys", "data": [5.0]}], parameters=[{"name": "ss", "auxdata": [50.0]}]))
    add("shapesys_factors_from_the_measurement", two_bins(
        [{"name": "ss", "type": "shapesys", "data": [5.0, 4.0]}], parameters=[{"name": "ss", "factors": [64.0, 50.0]}]))
    add("staterror_sigmas_from_the_measurement", two_bins(
        [{"name": "stat", "type": "staterror", "data": [5.0, 4.0]}], parameters=[{"name": "stat", "sigmas": [0.2, 0.05]}]))
    add("normsys_auxdata_from_the_measurement", one_bin(bkg=[normsys()], parameters=[{"name": "syst", "auxdata": [0.5]}]))
    add("measurement_config_of_a_missing_parameter", one_bin(
        parameters=[{"name": "lumi", "auxdata": [1.0], "sigmas": [0.02], "bounds": [[0.5, 1.5]], "inits": [1.0]}]))
    add("free_background_normalisation", one_bin(bkg=[{"name": "k", "type": "normfactor", "data": None}]))
    add("observations_all_zero", one_bin(n=0.0))
    add("signal_zero", one_bin(s=0.0))
    add("limit_below_the_scan_start", one_bin(s=1000.0, b=10.0, n=10.0))
    add("normfactor_twice_on_a_sample", one_bin(sig=[mu(), mu()]),
        "the same modifier twice on one sample is a mistake whose meaning pyhf picks silently")
    add("normsys_twice_on_a_sample", one_bin(bkg=[normsys(), normsys()]),
        "the same modifier twice on one sample is a mistake whose meaning pyhf picks silently")
    ws = one_bin()
    ws["observations"].append({"name": "sr", "data": [60.0]})
    add("two_observations_for_one_channel", ws, "pyhf takes the last of two observations; neither is clearly meant")
    ws = workspace(
        [{"name": "sr", "samples": [
            {"name": "signal", "data": [5.0], "modifiers": [{"name": "stat[0]", "type": "normfactor", "data": None}]},
            {"name": "background", "data": [50.0], "modifiers": [{"name": "stat", "type": "staterror", "data": [5.0]}]},
        ]}],
        [{"name": "sr", "data": [55.0]}], poi="stat[0]")
    add("parameter_names_collide", ws, "two parameters named stat[0] cannot be reported or fixed by name")
    add("shapefactor_across_channels_of_different_bins", two_channels("shapefactor", None, None, 3),
        "pyhf gives the set the first channel's bin count and leaves the other's last bin unmodified")

    # Two channels of every modifier type, with histosys code0 (its kink at α = 0 once made
    # neos's fits stop without a descent step).
    both = workspace(
        [
            {"name": "SR", "samples": [
                {"name": "signal", "data": [3.0, 6.0, 9.0, 4.0], "modifiers": [
                    mu(), {"name": "lumi", "type": "lumi", "data": None}, normsys("sig_theory", 1.08, 0.93)]},
                {"name": "ttbar", "data": [60.0, 42.0, 25.0, 9.0], "modifiers": [
                    {"name": "lumi", "type": "lumi", "data": None},
                    {"name": "jes", "type": "histosys", "data": {"hi_data": [64.0, 44.0, 24.0, 8.0], "lo_data": [57.0, 40.5, 26.0, 10.5]}},
                    normsys("ttbar_xsec", 1.05, 0.96),
                    {"name": "staterror_SR", "type": "staterror", "data": [3.0, 2.5, 2.0, 1.5]}]},
            ]},
            {"name": "CR", "samples": [
                {"name": "ttbar", "data": [300.0, 180.0], "modifiers": [
                    {"name": "lumi", "type": "lumi", "data": None},
                    {"name": "jes", "type": "histosys", "data": {"hi_data": [310.0, 185.0], "lo_data": [292.0, 176.0]}},
                    normsys("ttbar_xsec", 1.05, 0.96)]},
            ]},
        ],
        [{"name": "SR", "data": [70.0, 50.0, 36.0, 12.0]}, {"name": "CR", "data": [305.0, 176.0]}],
        [{"name": "lumi", "auxdata": [1.0], "sigmas": [0.017], "bounds": [[0.9, 1.1]], "inits": [1.0]}],
    )
    add("two_channels_of_every_modifier_with_code0", both)

    # Workspaces pyhf refuses: neos must refuse them too.
    ws = one_bin(); del ws["version"]; add("no_version", ws)
    ws = one_bin(); ws["version"] = "2.0.0"; add("unknown_version", ws)
    ws = one_bin(); ws["extra"] = 1; add("unknown_top_level_field", ws)
    ws = one_bin(); ws["channels"][0]["samples"][0]["weight"] = 2.0; add("unknown_sample_field", ws)
    ws = one_bin(); del ws["channels"][0]["samples"][0]["modifiers"][0]["data"]; add("normfactor_without_data", ws)
    ws = one_bin(); ws["channels"][0]["samples"][0]["modifiers"][0]["data"] = [1.0]; add("normfactor_with_data", ws)
    ws = one_bin(); del ws["measurements"][0]["config"]["parameters"]; add("no_parameters_list", ws)
    add("sigmas_on_a_normsys", one_bin(bkg=[normsys()], parameters=[{"name": "syst", "sigmas": [2.0]}]))
    add("auxdata_on_a_normfactor", one_bin(parameters=[{"name": "mu", "auxdata": [1.0]}]))
    add("factors_on_a_staterror", two_bins(
        [{"name": "stat", "type": "staterror", "data": [5.0, 4.0]}], parameters=[{"name": "stat", "factors": [1.0, 1.0]}]))
    add("two_configs_for_one_parameter", one_bin(parameters=[{"name": "mu", "bounds": [[0, 5]]}, {"name": "mu", "bounds": [[0, 8]]}]))
    add("shapesys_across_channels", two_channels("shapesys", [5.0, 4.0], [3.0, 2.5]))
    add("normsys_and_lumi_share_a_name", one_bin(
        bkg=[normsys("lumi")], sig=[mu(), {"name": "lumi", "type": "lumi", "data": None}],
        parameters=[{"name": "lumi", "auxdata": [1.0], "sigmas": [0.02]}]))
    add("normfactor_and_shapefactor_share_a_name", one_bin(bkg=[{"name": "mu", "type": "shapefactor", "data": None}]))
    add("lumi_with_another_name", one_bin(
        sig=[mu(), {"name": "luminosity", "type": "lumi", "data": None}],
        parameters=[{"name": "luminosity", "auxdata": [1.0], "sigmas": [0.02]}]))
    ws = one_bin(); ws["channels"][0]["samples"] = []; add("channel_without_samples", ws)
    ws = one_bin(); ws["channels"] = []; add("no_channels", ws)
    ws = one_bin(); ws["channels"][0]["samples"][0]["data"] = []; add("empty_sample_data", ws)
    add("normsys_without_lo", one_bin(bkg=[{"name": "syst", "type": "normsys", "data": {"hi": 1.1}}]))
    add("histosys_of_the_wrong_length", two_bins([{"name": "h", "type": "histosys", "data": {"hi_data": [1.0], "lo_data": [1.0, 2.0]}}]))
    add("staterror_of_the_wrong_length", two_bins([{"name": "stat", "type": "staterror", "data": [1.0]}]))
    ws = one_bin(); ws["observations"][0]["name"] = "other"; add("no_observation_for_a_channel", ws)
    add("bounds_low_above_high", one_bin(parameters=[{"name": "mu", "bounds": [[5.0, 1.0]]}]))
    add("inits_outside_the_bounds", one_bin(parameters=[{"name": "mu", "inits": [20.0]}]))
    ws = one_bin(); ws["measurements"][0]["config"]["poi"] = "nope"; add("poi_not_in_the_model", ws)
    ws = two_bins([]); ws["channels"][0]["samples"][1]["data"] = [50.0]; add("samples_of_different_bins", ws)
    add("poi_fixed", one_bin(parameters=[{"name": "mu", "fixed": True}]))
    add("poi_bounds_of_zero_width", one_bin(parameters=[{"name": "mu", "bounds": [[1.0, 1.0]]}]))
    add("poi_bounds_without_zero", one_bin(parameters=[{"name": "mu", "bounds": [[0.5, 10.0]], "inits": [1.0]}]))
    add("poi_bounds_below_zero", one_bin(parameters=[{"name": "mu", "bounds": [[-5.0, 10.0]]}]))
    return out


# Cases run with another histosys interpolation (the CLI's --histosys-interpcode).
CODE0 = {"two_channels_of_every_modifier_with_code0": "code0"}

# Models whose likelihood is flat along a direction, so that the best-fit point is not unique:
# only the minimum's value can be compared.
FLAT = {
    "free_background_normalisation": "only 50 k + 5 mu is measured",
    "signal_zero": "mu scales an empty sample",
}


def numbers(spec, histosys_code=None):
    ws = pyhf.Workspace(spec)
    settings = {}
    if histosys_code:
        settings["modifier_settings"] = {"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": histosys_code}}
    model = ws.model(**settings)
    data = ws.data(model)
    out = {"par_names": model.config.par_names}
    best, twice_nll = pyhf.infer.mle.fit(data, model, return_fitted_val=True)
    out["free_fit"] = {"bestfit": [float(v) for v in best], "twice_nll": float(twice_nll)}
    cls_obs, cls_exp = pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde", return_expected_set=True)
    out["hypotest_mu1_qtilde"] = {"CLs_obs": float(cls_obs), "CLs_exp": [float(v) for v in cls_exp]}
    p0_obs, p0_exp = pyhf.infer.hypotest(0.0, data, model, test_stat="q0", return_expected_set=True)
    out["hypotest_mu0_q0"] = {"p0_obs": float(p0_obs), "p0_exp": [float(v) for v in p0_exp]}
    # pyhf's root finding caches CLs by μ, which jax arrays cannot key: the limit runs on the
    # numpy backend (finite-difference gradients: agreement to ~1e-4 is what to expect), with
    # the search inside the POI's bounds as neos keeps it.
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(solver_options={"ftol": 1e-14}))
    try:
        hi = model.config.suggested_bounds()[model.config.poi_index][1]
        obs, exp = pyhf.infer.intervals.upper_limits.toms748_scan(
            data, model, hi * 1e-6, hi, level=0.05, atol=1e-12, rtol=1e-10, test_stat="qtilde"
        )
        out["upper_limit"] = {"obs": float(obs), "exp": [float(v) for v in exp]}
    except Exception as e:  # noqa: BLE001 - recorded, not raised: CLs may never reach 0.05
        out["upper_limit"] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
    finally:
        pyhf.set_backend("jax", pyhf.optimize.scipy_optimizer(solver_options={"ftol": 1e-14}))
    return out


def main():
    results = []
    for name, spec, refuse in cases():
        case = {"name": name, "workspace": spec}
        code = CODE0.get(name)
        if code:
            case["args"] = ["--histosys-interpcode", code]
        try:
            case["pyhf"] = numbers(copy.deepcopy(spec), code)
        except Exception as e:  # noqa: BLE001 - the verdict is the point
            case["pyhf_error"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
        if refuse:
            case["neos_refuses"] = refuse
        if name in FLAT:
            case["flat"] = FLAT[name]
        results.append(case)
    json.dump({"pyhf": pyhf.__version__, "cases": results}, __import__("sys").stdout, indent=1)


if __name__ == "__main__":
    main()
