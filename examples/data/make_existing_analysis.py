"""Writes existing_analysis.json: a pyhf workspace that stands for an analysis a physicist already
has (its background model, control and validation regions and systematics) and into which a
network's signal region is spliced with `model from "…"` in `neos!` (examples/own_data.rs and
tests/macro_spliced.rs). It has three regions, three samples and 21 parameters: μ, a free
background normalisation, eight normsys, two histosys, a shapesys of two bins and seven
staterror bins.

Run it with pyhf installed to check that pyhf reads the file: python make_existing_analysis.py"""
import json


def normsys(name, lo, hi):
    return {"name": name, "type": "normsys", "data": {"lo": lo, "hi": hi}}


def histosys(name, lo, hi):
    return {"name": name, "type": "histosys", "data": {"lo_data": lo, "hi_data": hi}}


def staterror(name, widths):
    return {"name": name, "type": "staterror", "data": widths}


# Experimental uncertainties that every simulated sample shares.
experimental = [normsys("lumi", 0.98, 1.02), normsys("jet_energy_scale", 0.95, 1.04),
                normsys("jet_energy_resolution", 0.98, 1.03), normsys("b_tagging", 0.97, 1.03),
                normsys("pileup", 0.99, 1.02), normsys("trigger", 0.99, 1.01)]


def signal(data):
    return {"name": "signal", "data": data,
            "modifiers": [{"name": "mu", "type": "normfactor", "data": None},
                          normsys("signal_theory", 0.9, 1.1)] + experimental}


def background(data, extra):
    return {"name": "background", "data": data,
            "modifiers": [{"name": "background_norm", "type": "normfactor", "data": None}] + experimental + extra}


def other(data, extra):
    return {"name": "other", "data": data,
            "modifiers": [normsys("other_cross_section", 0.85, 1.15)] + experimental + extra}


channels = [
    {"name": "background_control", "samples": [
        signal([0.5, 0.2, 0.1, 0.05]),
        background([900.0, 650.0, 380.0, 150.0],
                   [histosys("background_shape", [880.0, 655.0, 390.0, 160.0], [920.0, 645.0, 370.0, 141.0]),
                    staterror("stat_background_control", [12.0, 10.0, 8.0, 5.0])]),
        other([60.0, 45.0, 30.0, 12.0],
              [histosys("other_shape", [57.0, 44.0, 31.0, 13.0], [63.0, 46.0, 29.0, 11.2]),
               staterror("stat_background_control", [3.0, 2.5, 2.0, 1.2])]),
    ]},
    {"name": "sideband", "samples": [
        background([420.0, 260.0], [histosys("background_shape", [410.0, 262.0], [430.0, 258.0])]),
        other([90.0, 70.0], [{"name": "other_sideband_shape", "type": "shapesys", "data": [9.0, 7.0]}]),
    ]},
    {"name": "validation_region", "samples": [
        signal([1.0, 2.0, 1.5]),
        background([150.0, 95.0, 40.0], [staterror("stat_validation_region", [6.0, 5.0, 3.0])]),
        other([25.0, 18.0, 9.0], [staterror("stat_validation_region", [2.0, 1.5, 1.0])]),
    ]},
]


def background_only(channel):
    return [sum(s["data"][b] for s in channel["samples"] if s["name"] != "signal")
            for b in range(len(channel["samples"][0]["data"]))]


workspace = {
    "channels": channels,
    "observations": [{"name": c["name"], "data": background_only(c)} for c in channels],
    "measurements": [{"name": "measurement", "config": {"poi": "mu", "parameters": [
        {"name": "mu", "bounds": [[0.0, 10.0]]},
        {"name": "background_norm", "bounds": [[0.0, 5.0]]},
    ]}}],
    "version": "1.0.0",
}

with open("existing_analysis.json", "w") as f:
    json.dump(workspace, f, indent=1)
    f.write("\n")

try:
    import pyhf
    model = pyhf.Workspace(workspace).model()
    print(f"pyhf reads it: {model.config.npars} parameters, {len(model.config.par_order)} parameter sets")
except ImportError:
    pass
