"""The committed study files agree with the code: the rates the nets train at are the committed
sweep's picks, the committed study ran at them, from a clean tree, with the protocol in code."""
import json
import os

import pytest
from caffe_nets import REPO

from examples.common.protocol import STUDY, describe
from examples.detector import prototxt as detector_prototxt
from examples.ssd import prototxt as ssd_prototxt
from examples.study.study import SEEDS
from examples.study.sweep import SWEEP_SEED, stable_pick

RATES = {"detector": detector_prototxt.RATES, "ssd": ssd_prototxt.RATES}
STABLE_RATES = {"detector": detector_prototxt.STABLE_RATES, "ssd": ssd_prototxt.STABLE_RATES}


def _load(name):
    with open(os.path.join(REPO, "results", name), encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("name", ["study.json", "study_sweep.json"])
def test_committed_file_came_from_a_clean_tree_under_this_protocol(name):
    data = _load(name)
    assert data["code"]["clean"] is True and len(data["code"]["commit"]) == 40
    assert data["quick"] is False
    assert data["protocol"]["text"] == describe(STUDY)["text"]


def test_rates_in_code_are_the_sweeps_interior_picks():
    sweep = _load("study_sweep.json")
    for net, arms in sweep["nets"].items():
        assert {key: arm["picked"] for key, arm in arms.items()} == RATES[net]
        for arm in arms.values():
            rates = [p["base_lr"] for p in arm["points"]]
            assert rates == sorted(rates) and arm["picked"] in rates
            assert arm["interior"] and min(rates) < arm["picked"] < max(rates)


def test_stricter_rates_in_code_are_the_sweeps_stricter_picks():
    sweep = _load("study_sweep.json")
    for net, arms in sweep["nets"].items():
        assert {key: stable_pick(arm["points"]) for key, arm in arms.items()} == STABLE_RATES[net]


def test_the_sensitivity_analysis_ran_at_the_stricter_rates_on_the_same_seeds():
    study = _load("study.json")
    for net, data in study["stable"]["nets"].items():
        for key, arm in data["arms"].items():
            assert arm["base_lr"] == STABLE_RATES[net][key]
            assert [s["seed"] for s in arm["seeds"]] == list(SEEDS)


def test_the_study_ran_at_those_rates_on_other_seeds_than_the_sweep():
    study, sweep = _load("study.json"), _load("study_sweep.json")
    assert SWEEP_SEED == sweep["seed"] and SWEEP_SEED not in study["seeds"]
    assert study["seeds"] == list(SEEDS)
    for net, data in study["nets"].items():
        for key, arm in data["arms"].items():
            assert arm["base_lr"] == RATES[net][key]
            assert [s["seed"] for s in arm["seeds"]] == list(SEEDS)
