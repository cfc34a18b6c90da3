"""The detector study (examples.study): the sweep's choice of rates, the runs' divergence rule
and usable snapshots, the tables' and figures' helpers, on hand-made inputs; then
`python -m examples.study --quick` and `--sweep --quick` end to end with the real `caffe train`
(each once per session: module-scoped fixtures)."""
import json
import math
import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from caffe_nets import REPO

from examples.common.caffe_log import LossCurves
from examples.common.protocol import QUICK, STUDY, Protocol
from examples.common.stats import CONFIDENCE
from examples.common.training import chained
from examples.detector import experiment as detector
from examples.ssd import experiment as ssd
from examples.study import figures, report, runs, scoring, study, sweep
from examples.study.runs import Job, Trained

METRICS = ("AP", "AP50", "AP75")


# The sweep's choice of rates.

def point(rate, ap, diverged=False):
    return {"base_lr": rate, "AP": ap, "diverged": diverged}


def test_best_is_the_highest_final_ap_and_a_tie_goes_to_the_lower_rate():
    points = [point(0.04, 0.2), point(0.01, 0.3), point(0.02, 0.1)]
    assert sweep._best(points)["base_lr"] == 0.01
    tied = [point(0.04, 0.3), point(0.02, 0.3), point(0.01, 0.1)]
    assert sweep._best(tied)["base_lr"] == 0.02
    assert sweep._best(list(reversed(tied)))["base_lr"] == 0.02


def test_a_pick_at_the_top_of_the_rates_extends_up():
    assert sweep._extension([point(0.02, 0.1), point(0.01, 0.05), point(0.04, 0.3)]) == [0.08]


def test_a_pick_at_the_bottom_of_the_rates_extends_down():
    assert sweep._extension([point(0.02, 0.1), point(0.01, 0.3), point(0.04, 0.05)]) == [0.005]


def test_an_interior_pick_stops_the_sweep():
    assert sweep._extension([point(0.01, 0.1), point(0.02, 0.3), point(0.04, 0.2)]) == []
    # Diverged rates around it change nothing: they are its worse neighbours.
    assert sweep._extension([point(0.01, 0.0, True), point(0.02, 0.3),
                             point(0.04, 0.0, True)]) == []


def test_a_diverged_top_rate_does_not_extend_up():
    # Even as the best point (by hand: a diverged run scores 0 in the sweep), twice a rate
    # that diverged is not tried.
    assert sweep._extension([point(0.01, 0.1), point(0.02, 0.3, diverged=True)]) == []
    # Alone, it is also the lowest rate: the sweep goes down.
    assert sweep._extension([point(0.02, 0.3, diverged=True)]) == [0.01]
    # When every rate diverged (AP 0 each), the lowest is the pick: go down.
    assert sweep._extension([point(0.02, 0.0, True), point(0.04, 0.0, True)]) == [0.01]


def test_the_stricter_pick_is_the_best_rate_whose_double_trained():
    # 0.08 is best, but its double trained to nothing (AP under FAILED_AP): 0.04, whose double
    # 0.08 trained, is the stricter pick.
    points = [point(0.02, 0.3), point(0.04, 0.4), point(0.08, 0.45), point(0.16, 0.005)]
    assert sweep._best(points)["base_lr"] == 0.08 and sweep.stable_pick(points) == 0.04
    # A diverged double counts as failed too; the top rate never qualifies (no double tried).
    points = [point(0.01, 0.3), point(0.02, 0.35), point(0.04, 0.0, diverged=True)]
    assert sweep.stable_pick(points) == 0.01
    # When the best rate's double trained, both picks agree.
    points = [point(0.01, 0.3), point(0.02, 0.4), point(0.04, 0.35)]
    assert sweep.stable_pick(points) == sweep._best(points)["base_lr"] == 0.02
    assert sweep.stable_pick([point(0.01, 0.3)]) is None
    assert sweep.stable_pick([point(0.01, 0.3), point(0.02, 0.0, diverged=True)]) is None


def test_a_run_failed_when_it_diverged_or_trained_to_nothing():
    assert scoring.failed(point(0.01, 0.0, diverged=True))
    assert scoring.failed(point(0.01, scoring.FAILED_AP / 2))
    assert not scoring.failed(point(0.01, scoring.FAILED_AP))


def test_the_failure_boundary_counts_collapsed_runs_and_diverged_probes():
    arm = {"points": [point(0.02, 0.3), point(0.04, 0.001), point(0.08, 0.2)],
           "probes": [point(0.16, None, diverged=True)]}
    assert report.failure_boundary(arm) == 0.04
    arm["points"][1] = point(0.04, 0.3)
    assert report.failure_boundary(arm) == 0.16
    arm["probes"] = [point(0.16, None)]
    assert report.failure_boundary(arm) is None


def test_the_grids_are_rates_a_factor_2_apart_for_every_arm():
    for net in (detector, ssd):
        assert set(sweep.GRIDS[net.NAME]) == set(net.ARMS)
        for key, rates in sweep.GRIDS[net.NAME].items():
            assert list(rates) == sorted(rates) and len(rates) >= 2
            assert all(b == pytest.approx(2 * a) for a, b in zip(rates, rates[1:]))
            assert net.RATES[key] > 0
    assert sweep.SWEEP_SEED not in study.SEEDS


# The runs: jobs, usable snapshots, divergence.

FAKE_NET = SimpleNamespace(NAME="fake", ARMS={"focal": {"label": "FL"}})


def job(protocol=QUICK, prior=True, stop=None, kind="seeds", rate=0.02, seed=3):
    return Job(FAKE_NET, "focal", rate, seed, protocol, kind, prior=prior, stop=stop)


def make_run(folder, max_iter=QUICK.max_iter):
    return chained(str(folder), [(str(folder / "solver_warmup.prototxt"), QUICK.warmup_iter,
                                  str(folder / "warmup")),
                                 (str(folder / "solver_main.prototxt"), max_iter,
                                  str(folder / "snapshot"))])


def trained(folder, job_=None, diverged_at=None, diverged=None):
    job_ = job_ or job()
    return Trained(job_, make_run(folder, job_.stop or job_.protocol.max_iter),
                   diverged_at is not None if diverged is None else diverged, diverged_at,
                   1.0, [])


def test_a_job_names_its_run_folder_and_label(tmp_path):
    full = job()
    assert full.run_dir(str(tmp_path)) == str(tmp_path / "runs" / "fake" / "seeds" / "focal" /
                                              "lr0.02_seed3")
    check = job(prior=False, stop=8, kind="check")
    assert check.run_dir("out") == os.path.join("out", "runs", "fake", "check", "focal",
                                                "lr0.02_seed3_bias0")
    assert full.label == "fake FL lr 0.02 seed 3"
    assert check.label == "fake FL lr 0.02 seed 3, bias 0, first 8 it."


def test_snapshots_are_every_protocol_snapshot_and_the_runs_end(tmp_path):
    assert trained(tmp_path).snapshots() == [8, 16]
    assert trained(tmp_path, job(stop=QUICK.check_stop)).snapshots() == [8]
    assert trained(tmp_path, job(protocol=STUDY)).snapshots() == [400, 800, 1200, 1600, 2000,
                                                                   2400]
    odd = Protocol(max_iter=10, snapshot=4, warmup_iter=2)
    assert trained(tmp_path, job(protocol=odd)).snapshots() == [4, 8, 10]
    assert trained(tmp_path, job(stop=8)).iterations == 8
    assert trained(tmp_path).iterations == QUICK.max_iter


def test_a_snapshot_is_usable_when_it_exists_and_predates_a_divergence(tmp_path):
    run_ = trained(tmp_path)
    assert not run_.usable(8)                       # not written
    (tmp_path / "snapshot_iter_8.caffemodel").write_bytes(b"")
    assert run_.usable(8) and not run_.usable(16)
    assert trained(tmp_path, diverged_at=9).usable(8)
    assert not trained(tmp_path, diverged_at=8).usable(8)   # at the divergence: not usable
    assert not trained(tmp_path, diverged_at=3).usable(8)


def test_the_summary_has_the_runs_facts(tmp_path):
    summary = trained(tmp_path, job(prior=False, stop=8), diverged_at=5).summary()
    assert summary == {"key": "focal", "base_lr": 0.02, "seed": 3, "prior": False,
                       "iterations": 8, "diverged": True, "diverged_at": 5,
                       "train_seconds": 1.0, "train_curve": []}


def fake_train(points=None, error=None):
    """A stand-in for examples.common.training.train: its curves, or its RuntimeError."""
    def train(run, title, single_threaded=False, progress=True):
        if error:
            raise RuntimeError(error)
        return LossCurves(train=list(points))
    return train


def train_with(monkeypatch, tmp_path, points=None, error=None, log=""):
    monkeypatch.setattr(runs, "train", fake_train(points, error))
    run_ = make_run(tmp_path)
    with open(run_.log, "w") as f:
        f.write(log)
    return runs._train(job(), run_, side_by_side=False, number="1/1")


def test_a_finite_run_did_not_diverge(monkeypatch, tmp_path):
    done = train_with(monkeypatch, tmp_path, [(0, 3.0), (20, 1.0), (40, 0.5)])
    assert not done.diverged and done.diverged_at is None
    assert done.train_curve == [[0, 3.0], [20, 1.0], [40, 0.5]]
    assert done.train_seconds >= 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_train_loss_is_a_divergence_at_its_first_iteration(monkeypatch, tmp_path,
                                                                         bad):
    # C++ MultiBoxLoss carries on with a NaN loss: Caffe ends normally.
    done = train_with(monkeypatch, tmp_path, [(0, 3.0), (20, 1e30), (40, bad), (60, bad)])
    assert done.diverged and done.diverged_at == 40
    assert len(done.train_curve) == 4


LOG = ("I1 solver.cpp:231] Iteration 0, loss = 3.5\n"
       "I1 solver.cpp:231] Iteration 1, loss = 40.25\n"
       "I1 solver.cpp:231] Iteration 2, loss = 9.1e+14\n")


@pytest.mark.parametrize("message", [
    "FocalLossLayer: bottom[0] (logits) holds 6 non-finite value(s) (NaN or ±inf)",
    "the loss overflows float32 (logits too large)"])
def test_a_layers_blow_up_error_is_a_divergence_at_the_last_logged_iteration(
        monkeypatch, tmp_path, message):
    done = train_with(monkeypatch, tmp_path, error=f"caffe train exited with 1; {message}",
                      log=LOG)
    assert done.diverged and done.diverged_at == 2
    assert done.train_curve == [[0, 3.5], [1, 40.25], [2, 9.1e14]]


def test_a_logged_nan_before_the_error_places_the_divergence(monkeypatch, tmp_path):
    log = LOG + "I1 solver.cpp:231] Iteration 3, loss = nan\n"
    done = train_with(monkeypatch, tmp_path, error="... non-finite ...", log=log)
    assert done.diverged and done.diverged_at == 3


def test_any_other_failure_is_an_error(monkeypatch, tmp_path):
    with pytest.raises(RuntimeError, match="Check failed"):
        train_with(monkeypatch, tmp_path, error="caffe train exited with 134; Check failed: x",
                   log=LOG)


def test_run_jobs_trains_side_by_side_and_returns_the_jobs_order(monkeypatch, tmp_path):
    prepared, threads = [], set()

    def prepare(key, rate, seed, protocol, data_dir, run_dir, prior=True, stop=None):
        prepared.append((key, rate, seed, data_dir, run_dir, prior, stop))
        os.makedirs(run_dir, exist_ok=True)
        return chained(run_dir, [(os.path.join(run_dir, "solver.prototxt"), 16,
                                  os.path.join(run_dir, "snapshot"))])

    def train(run, title, single_threaded=False, progress=True):
        assert single_threaded and not progress   # side by side: one thread each, no bars
        threads.add(threading.get_ident())
        time.sleep(1.0 if "lr 0.01" in title else 0.01)   # the first job finishes last
        return LossCurves(train=[(0, 1.0)])

    net = SimpleNamespace(NAME="fake", ARMS={"focal": {"label": "FL"}}, prepare=prepare)
    monkeypatch.setattr(runs, "train", train)
    jobs = [Job(net, "focal", rate, 5, QUICK, "sweep") for rate in (0.01, 0.02, 0.04)]
    finished = []
    done = runs.run_jobs(jobs, str(tmp_path), {"fake": "DATA"}, 2,
                         lambda t: finished.append(t.job.rate))
    assert [t.job.rate for t in done] == [0.01, 0.02, 0.04]
    assert sorted(finished) == [0.01, 0.02, 0.04] and finished[-1] == 0.01
    assert [p[3] for p in prepared] == ["DATA"] * 3
    assert prepared[0][4] == jobs[0].run_dir(str(tmp_path))
    assert len(threads) == 2


# Scoring and statistics pieces.

def test_weights_past_a_divergence_score_zero_without_detections(tmp_path):
    images = SimpleNamespace(getImgIds=lambda: [1, 2, 3])
    net = SimpleNamespace(NAME="fake", ARMS={"focal": {"label": "FL"}},
                          ground_truth=lambda data_dir, split: images,
                          score=lambda *args: pytest.fail("scored unusable weights"))
    done = Trained(Job(net, "focal", 0.02, 1, QUICK, "seeds"), make_run(tmp_path), True, 4,
                   1.0, [])
    assert scoring.score(done, "DATA", "val", 8) == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0,
                                                     "detections": None, "images": 3}
    assert scoring.ap_curve(scoring.val_scores(done, "DATA")) == [[8, 0.0], [16, 0.0]]


def test_a_diverged_run_has_no_detections_on_each_image():
    found = study._detections({"test": {"detections": None, "images": 3}})
    assert len(found) == 3
    assert all(len(d["boxes"]) == len(d["scores"]) == len(d["classes"]) == 0 for d in found)
    assert found[0]["boxes"].shape == (0, 4)


# The tables and the figures' helpers.

def test_interval_formats_a_mean_and_its_interval():
    assert report.interval({"mean": 0.12345, "low": None, "high": None}) == "0.123"
    assert report.interval({"mean": 0.5, "low": 0.4, "high": 0.6}) == "0.500 [0.400, 0.600]"
    assert report.interval({"mean": 0.0116, "low": -0.16, "high": 0.183}, signed=True) == \
        "+0.012 [-0.160, +0.183]"
    assert report.interval({"mean": -0.02}, signed=True) == "-0.020"   # no "low" key at all


def test_the_demo_table_marks_a_diverged_arm():
    seed = {"AP": 0.5, "AP50": 0.75, "AP75": 0.25, "diverged": False,
            "val_curve": [[400, 0.25], [800, 0.5]]}
    net = {"title": "Net", "protocol": {"text": "SGD"}, "seed": 1701, "arms": {
        "a": {"label": "A", "base_lr": 0.02, "seeds": [seed]},
        "b": {"label": "B", "base_lr": 0.01, "seeds": [dict(seed, diverged=True)]}}}
    lines = report.demo_table(net).splitlines()
    assert lines[0].startswith("| Net (SGD; seed 1701, a demonstration) |")
    assert lines[2] == "| A | 0.02 | 0.500 | 0.750 | 0.250 | 0.250, 0.500 |"
    assert lines[3] == "| B | 0.01 | diverged | | | 0.250, 0.500 |"


@pytest.mark.parametrize("values, expected", [
    ([0.3, 0.5], (0.27, 0.53)),          # a margin of 15% of the range
    ([0.5, 0.5, 0.5], (0.48, 0.52)),     # at least 0.02 AP
    ([0.0, 0.01], (0.0, 0.03)),          # not below 0
    ([0.99, 1.0], (0.97, 1.0)),          # nor above 1
    ([0.2, 0.6, 0.4], (0.14, 0.66)),
])
def test_fitted_limits_pad_the_values_range(values, expected):
    assert figures.fitted_limits(values) == pytest.approx(expected)
    low, high = figures.fitted_limits(values)
    assert low <= min(values) and high >= max(values)


def test_fitted_limits_take_a_margin():
    assert figures.fitted_limits(np.array([0.2, 0.4]), margin=0.5) == pytest.approx((0.1, 0.5))


# `python -m examples.study --quick`, end to end.

def run_study(args, out):
    """The command, once; no time limit (how long it takes is the study's own report)."""
    done = subprocess.run([sys.executable, "-m", "examples.study", *args, "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick_study")
    stdout = run_study(["--quick"], out)
    with open(out / "study.json", encoding="utf-8") as f:
        return out, stdout, json.load(f)


NETS = {"detector": detector, "ssd": ssd}


def test_the_quick_study_file_describes_the_run(quick_study):
    _, _, results = quick_study
    assert results["quick"] is True and results["seeds"] == list(study.QUICK_SEEDS) == [1701, 1702]
    assert results["command"].startswith("python -m examples.study --quick")
    assert results["jobs"] == results["workers"] == runs.WORKERS
    assert results["protocol"]["text"] == QUICK.describe()
    assert results["flat_tolerance"] > 0
    assert set(results["data"]) == set(NETS) and all("summary" in d for d in results["data"].values())
    assert set(results["code"]) == {"commit", "clean"}
    assert list(results["nets"]) == list(NETS)


def test_every_arm_of_both_nets_trained_at_each_seed(quick_study):
    out, stdout, results = quick_study
    for name, net in NETS.items():
        data = results["nets"][name]
        assert data["title"] == net.TITLE and list(data["arms"]) == list(net.ARMS)
        assert len(data["arms"]) == {"detector": 4, "ssd": 2}[name]
        assert f"| {net.TITLE}: test COCO AP over 2 seeds" in stdout
        for key, arm in data["arms"].items():
            assert arm["label"] == net.ARMS[key]["label"] and arm["base_lr"] == net.RATES[key]
            assert [s["seed"] for s in arm["seeds"]] == list(study.QUICK_SEEDS)
            assert 0 <= arm["diverged"] <= arm["failed"] <= 2
            assert arm["failed"] == sum(s["failed"] for s in arm["seeds"])
            assert arm["flat"] == sum(s["flat"] and not s["failed"] for s in arm["seeds"])
            for seed in arm["seeds"]:
                assert seed["key"] == key and seed["iterations"] == QUICK.max_iter
                assert seed["prior"] is True and seed["base_lr"] == net.RATES[key]
                assert [it for it, _ in seed["val_curve"]] == [8, 16]
                folder = (out / "runs" / name / "seeds" / key /
                          f"lr{net.RATES[key]:g}_seed{seed['seed']}")
                assert (folder / f"snapshot_iter_{QUICK.max_iter}.caffemodel").exists() or \
                    seed["diverged"]
            for metric in METRICS:
                values = [s[metric] for s in arm["seeds"]]
                assert all(0 <= v <= 1 for v in values)
                assert arm[metric]["n"] == 2 and arm[metric]["values"] == pytest.approx(values)
                assert arm[metric]["low"] <= arm[metric]["mean"] <= arm[metric]["high"]
            assert ("detections" in arm) == (name == "detector")


def test_the_sensitivity_analysis_trains_the_arms_whose_stricter_rate_differs(quick_study):
    out, stdout, results = quick_study
    assert results["stable"]["rule"] == study.STABLE_RULE
    for name, net in NETS.items():
        main, stable = results["nets"][name], results["stable"]["nets"][name]
        assert list(stable["arms"]) == list(net.ARMS)
        assert set(stable["comparisons"]) == set(main["comparisons"])
        assert f"| {net.TITLE} at the stricter rates: test COCO AP over 2 seeds" in stdout
        for key, arm in stable["arms"].items():
            assert arm["base_lr"] == net.STABLE_RATES[key]
            if net.STABLE_RATES[key] == net.RATES[key]:   # the same runs, not trained again
                assert arm["seeds"] == main["arms"][key]["seeds"]
            else:
                for seed in arm["seeds"]:
                    folder = (out / "runs" / name / "stable" / key /
                              f"lr{net.STABLE_RATES[key]:g}_seed{seed['seed']}")
                    assert (folder / "caffe.log").exists()
    changed = [(name, key) for name, net in NETS.items() for key in net.ARMS
               if net.STABLE_RATES[key] != net.RATES[key]]
    assert changed, "the committed sweep's stricter picks differ for some arms"


def test_the_comparisons_have_per_seed_bonferroni_and_bootstrap_intervals(quick_study):
    _, _, results = quick_study
    for name in NETS:
        data = results["nets"][name]
        assert data["comparison_count"] == 4
        assert data["adjusted_confidence"] == pytest.approx(1 - (1 - CONFIDENCE) / 4)
        expected = {f"{a}-{b}": (title, a, b) for title, a, b in study.COMPARISONS[name]}
        assert set(data["comparisons"]) == set(expected)
        for key, comparison in data["comparisons"].items():
            assert (comparison["name"], comparison["a"], comparison["b"]) == expected[key]
            a, b = data["arms"][comparison["a"]], data["arms"][comparison["b"]]
            for metric in METRICS:
                paired = comparison["paired"][metric]
                adjusted = comparison["paired_adjusted"][metric]
                differences = [x[metric] - y[metric] for x, y in zip(a["seeds"], b["seeds"])]
                assert paired["values"] == pytest.approx(differences, abs=1e-5)
                assert adjusted["values"] == paired["values"]
                assert paired["mean"] == pytest.approx(np.mean(differences), abs=1e-5)
                # The Bonferroni level's interval holds the 95% one.
                assert adjusted["low"] <= paired["low"] <= paired["high"] <= adjusted["high"]
                boot = comparison["bootstrap"][metric]
                assert set(boot) >= {"mean", "low", "high", "resamples"}
                assert boot["low"] <= boot["high"] and boot["resamples"] > 0
                # Δ over all test images once: the seed-averaged difference of the test APs.
                assert boot["mean"] == pytest.approx(np.mean(differences), abs=1e-4)


def test_the_no_prior_checks_ran_each_detector_arm_without_the_prior_bias(quick_study):
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format
    out, _, results = quick_study
    checks = results["no_prior"]
    assert list(checks) == list(detector.ARMS)
    for key, check in checks.items():
        assert check["prior"] is False and check["iterations"] == QUICK.check_stop
        assert check["label"] == detector.ARMS[key]["label"]
        # Every loss at one rate, the lowest swept: a divergence is not a high rate's doing.
        assert check["base_lr"] == min(detector.RATES.values())
        assert check["seed"] == study.QUICK_SEEDS[0]
        curve = check["train_curve"]
        assert curve and curve[0][0] == 0
        # A cut run logs every iteration (protocol.stages(stop=...)), so a divergence is placed
        # exactly: at the first non-finite loss, else where the layer's error stopped Caffe.
        finite = [loss is not None and math.isfinite(loss) for _, loss in curve]
        if check["diverged"]:
            bad = [it for (it, _), ok in zip(curve, finite) if not ok]
            assert check["diverged_at"] == (bad[0] if bad else curve[-1][0])
        else:
            assert all(finite) and check["diverged_at"] is None
            assert [it for it, _ in curve] == list(range(QUICK.check_stop + 1))
        folder = out / "runs" / "detector" / "check" / key / \
            f"lr{min(detector.RATES.values()):g}_seed{check['seed']}_bias0"
        net = text_format.Merge((folder / "train.prototxt").read_text(),
                                caffe_pb2.NetParameter())
        biases = [layer.convolution_param.bias_filler.value for layer in net.layer
                  if layer.name.startswith("cls_score_")]
        assert biases and all(b == 0 for b in biases)


def test_the_quick_study_draws_its_figure(quick_study):
    import matplotlib.image
    out, stdout, _ = quick_study
    image = matplotlib.image.imread(out / "study_ap.png")
    assert image.shape[0] > 500 and image.shape[1] > 500 and image.std() > 0.01
    assert "study_ap.png" in stdout and "study.json" in stdout
    assert not (out / "study_sweep.png").exists()   # no sweep file in this folder


# `python -m examples.study --sweep --quick`, end to end.

@pytest.fixture(scope="module")
def quick_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick_sweep")
    stdout = run_study(["--sweep", "--quick"], out)
    with open(out / "study_sweep.json", encoding="utf-8") as f:
        return out, stdout, json.load(f)


def test_the_quick_sweep_file_describes_the_run(quick_sweep):
    out, stdout, results = quick_sweep
    assert results["quick"] is True and results["seed"] == sweep.SWEEP_SEED
    assert results["split"] == "val" and results["check_stop"] == QUICK.check_stop
    assert results["protocol"]["text"] == QUICK.describe()
    assert results["command"].startswith("python -m examples.study --sweep --quick")
    assert list(results["nets"]) == list(NETS)
    assert not (out / "study.json").exists()
    assert "| rate sweep, seed 1801" in stdout


def test_each_arm_has_its_points_sorted_its_pick_and_its_probes(quick_sweep):
    out, stdout, results = quick_sweep
    for name, net in NETS.items():
        arms = results["nets"][name]
        assert list(arms) == list(net.ARMS)
        for key, arm in arms.items():
            assert arm["label"] == net.ARMS[key]["label"]
            points = arm["points"]
            rates = [p["base_lr"] for p in points]
            assert rates == sorted(rates) and len(set(rates)) == len(rates)
            # The quick grid (the study's first two rates) and the rates the sweep added.
            assert set(sweep.GRIDS[name][key][:2]) <= set(rates)
            assert arm["picked"] in rates
            assert arm["picked"] == sweep._best(points)["base_lr"]
            assert arm["interior"] == (rates[0] < arm["picked"] < rates[-1])
            for p in points:
                assert p["key"] == key and p["seed"] == sweep.SWEEP_SEED and p["prior"] is True
                assert p["iterations"] == QUICK.max_iter
                assert [it for it, _ in p["val_curve"]] == [8, 16]
                assert p["AP"] == pytest.approx(p["val_curve"][-1][1], abs=1e-6)
                assert (out / "runs" / name / "sweep" / key /
                        f"lr{p['base_lr']:g}_seed{sweep.SWEEP_SEED}").is_dir()
            probes = arm["probes"]
            diverged = [p["base_lr"] for p in points + probes if p["diverged"]]
            if any(p["diverged"] for p in points):
                assert probes == []
            else:
                # --quick: one probe, at twice the highest rate, over the first check_stop
                # iterations.
                (probe,) = probes
                assert probe["base_lr"] == pytest.approx(2 * max(rates))
                assert probe["iterations"] == QUICK.check_stop
                assert (out / "runs" / name / "probe" / key /
                        f"lr{probe['base_lr']:g}_seed{sweep.SWEEP_SEED}").is_dir()
            assert arm["boundary"] == (min(diverged) if diverged else None)
            assert arm["highest_tried"] == max(p["base_lr"] for p in points + probes)
            assert f"| {name}: {arm['label']} |" in stdout


def test_the_sweep_figure_draws_from_the_file(quick_sweep, tmp_path):
    import matplotlib.image
    _, _, results = quick_sweep
    path = figures.sweep_figure(results, str(tmp_path / "study_sweep.png"))
    image = matplotlib.image.imread(path)
    assert image.shape[1] > 500 and image.std() > 0.01
