"""Writes base.json: a pyhf workspace that stands for an existing analysis, with a signal
region, two control regions and a validation region, and 21 parameters (normsys, histosys,
normfactors, staterrors, a shapesys), for the splicing test of `neos!` (tests/macro_spliced.rs).
Run with pyhf installed to check that pyhf reads it: python make_base.py"""
import json

def normsys(name, lo, hi):
    return {"name": name, "type": "normsys", "data": {"lo": lo, "hi": hi}}

def histosys(name, lo, hi):
    return {"name": name, "type": "histosys", "data": {"lo_data": lo, "hi_data": hi}}

common = [normsys("lumi", 0.98, 1.02), normsys("jes", 0.96, 1.05), normsys("jer", 0.98, 1.03),
          normsys("btag", 0.95, 1.04), normsys("pileup", 0.99, 1.02), normsys("trigger", 0.99, 1.01)]

def bkg(name, data, norm, extra):
    return {"name": name, "data": data, "modifiers": [{"name": norm, "type": "normfactor", "data": None}] + common + extra}

channels = [
    {"name": "signal_region", "samples": [
        {"name": "signal", "data": [2.0, 5.0, 9.0, 4.0],
         "modifiers": [{"name": "mu", "type": "normfactor", "data": None}, normsys("signal_theory", 0.9, 1.1)] + common},
        bkg("ttbar", [60.0, 40.0, 20.0, 8.0], "ttbar_norm",
            [histosys("ttbar_shower", [58.0, 41.0, 21.0, 9.0], [62.0, 39.0, 19.0, 7.5]),
             {"name": "stat_sr", "type": "staterror", "data": [3.0, 2.5, 2.0, 1.5]}]),
        bkg("wjets", [30.0, 15.0, 6.0, 2.0], "wjets_norm",
            [histosys("wjets_scale", [27.0, 14.0, 6.5, 2.4], [33.0, 16.0, 5.6, 1.7]),
             {"name": "stat_sr", "type": "staterror", "data": [2.0, 1.5, 1.0, 0.8]}]),
    ]},
    {"name": "ttbar_control", "samples": [
        bkg("ttbar", [400.0, 350.0], "ttbar_norm", [histosys("ttbar_shower", [395.0, 352.0], [405.0, 348.0])]),
        bkg("wjets", [50.0, 40.0], "wjets_norm", [{"name": "wjets_cr_shape", "type": "shapesys", "data": [5.0, 4.0]}]),
    ]},
    {"name": "wjets_control", "samples": [
        bkg("wjets", [300.0], "wjets_norm", [histosys("wjets_scale", [290.0], [310.0])]),
        bkg("ttbar", [30.0], "ttbar_norm", []),
    ]},
    {"name": "validation_region", "samples": [
        bkg("ttbar", [80.0, 50.0, 30.0], "ttbar_norm", [{"name": "stat_vr", "type": "staterror", "data": [4.0, 3.0, 2.5]}]),
        bkg("wjets", [40.0, 25.0, 10.0], "wjets_norm", [{"name": "stat_vr", "type": "staterror", "data": [3.0, 2.0, 1.5]}]),
    ]},
]

def total(channel):
    return [sum(s["data"][b] for s in channel["samples"] if s["name"] != "signal")
            for b in range(len(channel["samples"][0]["data"]))]

workspace = {
    "channels": channels,
    "observations": [{"name": c["name"], "data": total(c)} for c in channels],
    "measurements": [{"name": "measurement", "config": {"poi": "mu", "parameters": [
        {"name": "mu", "bounds": [[0.0, 10.0]]},
        {"name": "ttbar_norm", "bounds": [[0.0, 5.0]]},
    ]}}],
    "version": "1.0.0",
}

with open("base.json", "w") as f:
    json.dump(workspace, f, indent=1)
    f.write("\n")

try:
    import pyhf
    model = pyhf.Workspace(workspace).model()
    print(f"pyhf reads it: {model.config.npars} parameters, {len(model.config.par_order)} parameter sets")
except ImportError:
    pass
