"""The study findings' words follow the numbers (tools/docs/study_findings.py): on the committed
results and on copies with the numbers moved, each verdict ("ahead", "not told apart",
"diverged", "flattened") changes with them."""
import copy
import json
import os

import pytest
from caffe_nets import REPO

from examples.study.report import interval
from tools.docs.study_findings import findings, headline_sentence, verdict

STUDY = os.path.join(REPO, "results", "study.json")
SWEEP = os.path.join(REPO, "results", "study_sweep.json")


def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def committed():
    return _load(STUDY), _load(SWEEP)


def _every_run_trained(study):
    """A copy of the study in which every seed of every arm trained (AP 0.3, a flat curve), and
    those seeds."""
    moved = copy.deepcopy(study)
    seeds = [seed for net in moved["nets"].values() for arm in net["arms"].values()
             for seed in arm["seeds"]]
    for seed in seeds:
        seed.update(diverged=False, diverged_at=None, AP=0.3, last_val_change=0.001)
    return moved, seeds


def _interval(mean, low, high, n=4):
    return {"n": n, "mean": mean, "low": low, "high": high, "sd": 0.01, "values": [mean] * n}


@pytest.mark.parametrize("low, high, said", [(0.01, 0.05, "FL ahead"), (-0.05, -0.01, "CE ahead"),
                                             (-0.01, 0.02, "not told apart")])
def test_verdict_follows_the_interval(low, high, said):
    assert verdict(_interval((low + high) / 2, low, high), "FL", "CE") == said


def test_one_seed_has_no_verdict():
    assert verdict(_interval(0.1, None, None, n=1), "FL", "CE") == "one seed: no interval"


def test_the_headline_ranks_the_arms_and_names_the_differences_that_exclude_0(committed):
    study, _ = committed
    sentence = headline_sentence(study)
    assert sentence.count(".") >= 1 and sentence.endswith(".")
    for net in study["nets"].values():
        ranked = sorted(net["arms"].values(), key=lambda arm: -arm["AP"]["mean"])
        assert " > ".join(f"{arm['label']} {arm['AP']['mean']:.3f}" for arm in ranked) in sentence
        for c in net["comparisons"].values():
            a, b = c["name"].split(" − ")
            said = verdict(c["paired"]["AP"], a, b)
            assert (f"{c['name']} ({said})" in sentence) == (said != "not told apart")


def test_the_headline_says_when_no_difference_excludes_0(committed):
    study, _ = committed
    moved = copy.deepcopy(study)
    for net in moved["nets"].values():
        for c in net["comparisons"].values():
            c["paired"]["AP"] = _interval(0.0, -0.01, 0.01)
    assert "none excludes 0" in headline_sentence(moved)


def test_moving_an_interval_moves_the_words(committed):
    study, sweep = committed
    moved = copy.deepcopy(study)
    comparison = moved["nets"]["detector"]["comparisons"]["focal-ce"]
    for paired in ("paired", "paired_adjusted"):   # both levels agree: one verdict
        comparison[paired]["AP"] = _interval(0.05, 0.02, 0.08)
    assert "**FL − CE: FL ahead.**" in findings(moved, sweep)
    for paired in ("paired", "paired_adjusted"):
        comparison[paired]["AP"] = _interval(-0.05, -0.08, -0.02)
    assert "**FL − CE: CE ahead.**" in findings(moved, sweep)
    for paired in ("paired", "paired_adjusted"):
        comparison[paired]["AP"] = _interval(0.0, -0.02, 0.02)
    assert "**FL − CE: not told apart.**" in findings(moved, sweep)


def test_no_prior_count_follows_the_checks(committed):
    study, sweep = committed
    moved = copy.deepcopy(study)
    for check in moved["no_prior"].values():
        check.update(diverged=True, diverged_at=3)
    count = len(moved["no_prior"])
    assert f"{count} of {count} losses diverged" in findings(moved, sweep)
    for check in moved["no_prior"].values():
        check.update(diverged=False, diverged_at=None)
    assert f"0 of {count} losses diverged" in findings(moved, sweep)
    rate = min(check["base_lr"] for check in moved["no_prior"].values())
    assert f"all at {rate:g}, the lowest swept rate" in findings(moved, sweep)


def test_flatness_counts_the_runs_that_trained(committed):
    study, sweep = committed
    moved, seeds = _every_run_trained(study)
    total = len(seeds)
    assert f"flattened** in {total} of the {total} runs that trained" in findings(moved, sweep)
    arm = moved["nets"]["detector"]["arms"]["focal"]
    for seed in arm["seeds"]:
        seed["last_val_change"] = 0.05
    text = findings(moved, sweep)
    assert f"flattened** in {total - len(arm['seeds'])} of the {total} runs" in text
    assert f"{arm['label']} (last change +0.050 to +0.050)" in text
    # A run that failed is left out, however flat its curve.
    arm["seeds"][0].update(AP=0.0, last_val_change=0.0)
    assert f"of the {total - 1} runs that trained" in findings(moved, sweep)


def test_a_verdict_that_does_not_hold_at_the_bonferroni_level_says_so(committed):
    study, sweep = committed
    moved = copy.deepcopy(study)
    comparison = moved["nets"]["ssd"]["comparisons"]["focal-multibox"]
    comparison["paired"]["AP"] = _interval(-0.05, -0.09, -0.01)
    comparison["paired_adjusted"]["AP"] = _interval(-0.05, -0.14, 0.04)
    assert ("**MultiBoxFocalLossLayer − MultiBoxLoss: MultiBoxLoss ahead at 95 %, not told apart "
            "at the Bonferroni level.**") in findings(moved, sweep)
    comparison["paired_adjusted"]["AP"] = _interval(-0.05, -0.1, -0.001)
    assert "**MultiBoxFocalLossLayer − MultiBoxLoss: MultiBoxLoss ahead.**" in findings(moved,
                                                                                        sweep)


def test_the_chance_of_a_false_verdict_is_the_union_bound(committed):
    study, sweep = committed
    count = study["nets"]["detector"]["comparison_count"]
    assert f"up to {5 * count}% (the union bound" in findings(study, sweep)


def test_the_sensitivity_analysis_names_the_moved_arms_and_its_comparisons(committed):
    study, sweep = committed
    text, sentence = findings(study, sweep), headline_sentence(study)
    for name, net in study["stable"]["nets"].items():
        for key, arm in net["arms"].items():
            swept = study["nets"][name]["arms"][key]
            moved = arm["base_lr"] != swept["base_lr"]
            said = f"{arm['label']} at {arm['base_lr']:g} (swept {swept['base_lr']:g})"
            assert (said in text) == moved
            assert (f"{arm['label']} {arm['AP']['mean']:.3f} (at {arm['base_lr']:g})"
                    in sentence) == moved
        for c in net["comparisons"].values():
            assert f"{c['name']} {interval(c['paired']['AP'], signed=True)}" in text
    # Nothing moved: no sensitivity words.
    unmoved = copy.deepcopy(study)
    unmoved["stable"]["nets"] = copy.deepcopy(unmoved["nets"])
    assert "Sensitivity to the rate pick" not in findings(unmoved, sweep)
    assert "doubling clear" not in headline_sentence(unmoved)


def test_a_rate_that_trained_to_nothing_is_a_failure_boundary(committed):
    study, sweep = committed
    moved = copy.deepcopy(sweep)
    arm = moved["nets"]["detector"]["ce"]
    arm["points"][-1].update(diverged=False, AP=0.0)
    assert (f"{arm['label']} {arm['picked']:g} (failed from {arm['points'][-1]['base_lr']:g}, "
            in findings(study, moved))


def test_sweep_edges_are_named(committed):
    study, sweep = committed
    moved = copy.deepcopy(sweep)
    assert ("Every pick is interior" in findings(study, moved)) == all(
        arm["interior"] for arms in moved["nets"].values() for arm in arms.values())
    arm = moved["nets"]["detector"]["focal"]
    arm["interior"] = False
    assert f"At the edge of its grid: {arm['label']}" in findings(study, moved)


def test_divergences_at_the_swept_rate_are_counted_and_named(committed):
    study, sweep = committed
    moved, runs = _every_run_trained(study)
    assert (f"**No run diverged or failed at its swept rate** ({len(runs)} runs)"
            in findings(moved, sweep))
    arm = moved["nets"]["detector"]["arms"]["ce"]
    arm["seeds"][0].update(diverged=True, diverged_at=123, AP=0.0)
    arm["seeds"][1].update(AP=0.001)
    text = findings(moved, sweep)
    assert f"**2 of {len(runs)} runs failed at their arm's swept rate**" in text
    assert f"1 diverged: {arm['label']} seed {arm['seeds'][0]['seed']} (at iteration 123)" in text
    assert (f"1 trained to nothing with finite losses: {arm['label']} seed "
            f"{arm['seeds'][1]['seed']} (test AP 0.001)") in text


def test_the_headline_names_an_arm_that_failed_at_its_rate(committed):
    study, _ = committed
    moved, _ = _every_run_trained(study)
    assert "failed on" not in headline_sentence(moved)
    arm = moved["nets"]["ssd"]["arms"]["focal"]
    arm["seeds"][0]["diverged"] = True
    arm["seeds"][1]["AP"] = 0.0
    assert (f"{arm['label']} failed on 2 of {len(arm['seeds'])} seeds at its swept rate"
            in headline_sentence(moved))
