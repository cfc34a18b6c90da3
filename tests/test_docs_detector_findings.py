"""The detector findings' words follow the numbers (tools/docs/detector_findings.py): on the
committed results, and on copies changed so that each conclusion must flip."""
import copy
import json
import os

from tools.docs.blocks import REPO
from tools.docs.detector_findings import findings, gamma_sweep_findings, lr_sweep_findings


def _load(name):
    with open(os.path.join(REPO, "results", name), encoding="utf-8") as f:
        return json.load(f)


DETECTOR = _load("results.json")["detector"]


def test_committed_results_read_as_the_tables_say():
    text = findings(DETECTOR)
    pair = DETECTOR["paired"]["FL − CE, prior bias"]["AP"]
    assert f"{pair['mean']:+.3f} [{pair['low']:+.3f}, {pair['high']:+.3f}]" in text
    assert ("not told apart" in text) == (pair["low"] <= 0 <= pair["high"])


def test_an_interval_that_excludes_zero_names_the_leader():
    det = copy.deepcopy(DETECTOR)
    det["paired"]["FL − CE, prior bias"]["AP"].update(mean=0.05, low=0.01, high=0.09)
    text = findings(det)
    assert "FL has the higher AP" in text and "the interval excludes 0" in text
    assert "agrees with the paper's Table 1" in text


def test_a_diverged_seed_is_reported():
    det = copy.deepcopy(DETECTOR)
    det["arms"]["ce_noprior"]["diverged"] = 1
    text = findings(det)
    assert "CE without the prior diverged in 1 of" in text
    assert "did not diverge" not in text


def test_a_falling_validation_curve_is_not_called_still_learning():
    det = copy.deepcopy(DETECTOR)
    for seed in det["arms"]["focal"]["seeds"]:
        seed["val_curve"][-1][1] = 0.0
    text = findings(det)
    assert "Still learning" not in text
    assert "levelled off or fell" in text


def test_a_pick_at_the_edge_is_not_called_interior():
    sweep = copy.deepcopy(_load("detector_lr_sweep.json")["lr_sweep"])
    assert lr_sweep_findings(sweep).startswith("Both picks are interior")
    sweep["picked"]["focal"] = min(float(rate) for rate in sweep["mean_AP"]["focal"])
    assert "Not every pick is interior" in lr_sweep_findings(sweep)


def test_gamma_sweep_rows_that_differ_from_the_study_are_said_to_differ():
    """The sweep's γ = 0 and γ = 2 rows made equal to the study's CE and FL runs read as
    repeating them; one AP changed reads as differing (the committed sweep came from an older
    build of the kernels, so its rows are not the committed study's: the text says which)."""
    file = _load("detector_gamma_sweep.json")
    sweep = copy.deepcopy(file["gamma_sweep"])
    for gamma, arm in ((0.0, "ce"), (2.0, "focal")):
        point = next(p for p in sweep["points"].values() if p["gamma"] == gamma)
        point["base_lr"] = DETECTOR["arms"][arm]["base_lr"]
        study = {s["seed"]: s["AP"] for s in DETECTOR["arms"][arm]["seeds"]}
        for seed in point["seeds"]:
            seed["AP"] = study[seed["seed"]]
    assert "repeat `make example`'s CE and FL runs" in gamma_sweep_findings(sweep, DETECTOR, 60)
    for point in sweep["points"].values():
        if point["gamma"] == 2:
            point["seeds"][0]["AP"] += 0.01
    assert "differ from `make example`'s" in gamma_sweep_findings(sweep, DETECTOR, 60)
