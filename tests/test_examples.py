"""`make example` in its quick mode, end to end with the real `caffe train`, one example at a
time into a temporary folder; and the pieces it is built from, on small inputs."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from caffe_nets import REPO

from examples.common.caffe_log import LossCurves
from examples.common.loss_share import (
    cumulative_share,
    loss_share_analysis,
    share_of_easiest,
    softmax_loss_share_analysis,
)
from examples.common.losses import LABELS, SOFTMAX_LOSSES, losses_of
from examples.digit_grid import run as example_grid
from examples.digit_grid.data import (
    GRID,
    IGNORE_LABEL,
    MAX_POSITIVE_SHARE,
    STRIDE,
    make_canvases,
    per_class_targets,
)
from examples.digits import run as example_digits
from examples.digits.data import DigitImages

QUICK_RUN_TIMEOUT = 300
_quick_runs = {}   # example name -> (output folder, finished process): one run per session


def run_quick(example, tmp_path_factory):
    """(example, output folder, stdout, results) of `run_all --quick --only NAME`."""
    if example.NAME not in _quick_runs:
        out = tmp_path_factory.mktemp(f"quick_{example.NAME}")
        _quick_runs[example.NAME] = out, subprocess.run(
            [sys.executable, "-m", "examples.run_all", "--quick", "--only", example.NAME,
             "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=QUICK_RUN_TIMEOUT)
    out, done = _quick_runs[example.NAME]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(out / "results.json") as f:
        results = json.load(f)
    return example, out, done.stdout, results


@pytest.fixture(params=[example_digits, example_grid], ids=lambda e: e.NAME)
def quick_run(request, tmp_path_factory):
    return run_quick(request.param, tmp_path_factory)


@pytest.fixture
def grid_quick_run(tmp_path_factory):
    return run_quick(example_grid, tmp_path_factory)


def test_the_quick_run_shows_stages_and_progress_not_caffes_log(quick_run):
    example, _, stdout, _ = quick_run
    for stage in ("== set-up", "== data", "== training", "== evaluation", "== results"):
        assert stage in stdout
    runs = len(losses_of(example))
    assert f"{runs}/{runs} {example.NAME}" in stdout
    assert "done, final train loss" in stdout
    # glog lines look like "I20261128 22:59:22.876058  9736 solver.cpp:320] ..."
    assert "solver.cpp" not in stdout and "] Iteration" not in stdout


def test_the_quick_run_writes_results_figures_and_full_logs(quick_run):
    import matplotlib.image
    example, out, _, results = quick_run
    assert list(results["examples"]) == [example.NAME]
    assert results["quick"] is True
    # Which commit made the file, and whether its tracked files were as committed.
    assert len(results["code"]["commit"]) == 40 and isinstance(results["code"]["clean"], bool)
    figures = ["loss_curves.png", "ap_per_class.png"] + (["loss_share.png"] if example is example_grid else [])
    for name in figures:
        image = matplotlib.image.imread(out / name)
        assert image.shape[0] > 300 and image.shape[1] > 300
        assert image.std() > 0.01, f"{name} is blank"
    for key in losses_of(example):
        log = (out / "runs" / example.NAME / key / "caffe.log").read_text()
        assert "Optimization Done" in log and "Test net output #0: loss" in log


def test_every_quick_run_has_finite_falling_losses(quick_run):
    example, _, _, results = quick_run
    runs = results["examples"][example.NAME]["runs"]
    assert set(runs) == set(losses_of(example))
    for key, run in runs.items():
        train, test = run["curves"]["train"], run["curves"]["test"]
        assert [it for it, _ in train][-1] == example.QUICK_SOLVER["max_iter"]
        assert len(test) == 3     # iteration 0, half-way, end
        losses = [loss for _, loss in train + test]
        assert all(loss is not None and math.isfinite(loss) for loss in losses), key
        assert train[-1][1] < train[0][1], f"{key}: train loss did not fall: {train}"
        assert test[-1][1] < test[0][1], f"{key}: test loss did not fall: {test}"


def test_every_quick_run_is_scored_per_class(quick_run):
    example, _, stdout, results = quick_run
    for key, run in results["examples"][example.NAME]["runs"].items():
        metrics = run["metrics"]
        ap = metrics["ap_per_class"]
        assert len(ap) == 10 and all(0 < a <= 1 for a in ap)
        assert metrics["mAP"] == pytest.approx(np.mean(ap), abs=1e-5)
        assert f"| {LABELS[key]} | {metrics['mAP']:.3f} |" in stdout   # the printed table
        if example is example_digits:
            assert metrics["rare_AP"] == pytest.approx(np.mean([ap[c] for c in (3, 5, 8)]), abs=1e-5)


def test_the_loss_share_of_a_quick_run_is_a_set_of_valid_cumulative_curves(grid_quick_run):
    _, _, _, results = grid_quick_run
    data = results["examples"]["digit_grid"]["data"]
    assert data["train_positive_share"] <= MAX_POSITIVE_SHARE
    for key, run in results["examples"]["digit_grid"]["runs"].items():
        analysis = run["metrics"]["loss_share"]
        for kind in ("positives", "negatives"):
            assert analysis[kind]["count"] > 0, key
            for gamma, curve in analysis[kind]["curves"].items():
                assert curve[0] == 0 and curve[-1] == pytest.approx(1)
                assert np.all(np.diff(curve) >= -1e-9)
                shares = [analysis[kind]["easiest"][gamma][f] for f in ("0.5", "0.9", "0.99")]
                assert 0 <= shares[0] <= shares[1] <= shares[2] <= 1, (key, kind, gamma)


def test_the_loss_share_matches_hand_computed_focal_losses():
    """Four negatives and two positives with hand-evaluated ℓ⁻ = σ(x)^γ·log(1 + e^x) and
    ℓ⁺ = (1 − σ(x))^γ·log(1 + e^−x): the easiest half's share at γ = 0 and γ = 2."""
    logits = np.array([[-4.0], [-2.0], [0.0], [2.0], [3.0], [-1.0]])
    positives = np.array([[False], [False], [False], [False], [True], [True]])
    analysis = loss_share_analysis(logits, positives, gammas=(0.0, 2.0))
    sigmoid = [1 / (1 + math.exp(-x)) for x in (-4.0, -2.0, 0.0, 2.0)]
    for gamma in (0.0, 2.0):
        negative = sorted(p ** gamma * math.log1p(math.exp(x))
                          for p, x in zip(sigmoid, (-4.0, -2.0, 0.0, 2.0)))
        expected = (negative[0] + negative[1]) / sum(negative)
        assert analysis["negatives"]["easiest"][str(gamma)]["0.5"] == pytest.approx(expected)
        positive = sorted((1 - 1 / (1 + math.exp(-x))) ** gamma * math.log1p(math.exp(-x))
                          for x in (3.0, -1.0))
        assert analysis["positives"]["easiest"][str(gamma)]["0.5"] == pytest.approx(
            positive[0] / sum(positive))
    assert analysis["negatives"]["count"] == 4 and analysis["positives"]["count"] == 2


# The pieces, on small inputs.

def test_digit_grid_runs_the_softmax_pair_after_the_sigmoid_runs():
    assert losses_of(example_grid)[-2:] == list(SOFTMAX_LOSSES)
    assert losses_of(example_digits) == losses_of(example_grid)[:-2]


def test_the_softmax_loss_share_takes_each_cells_softmax_focal_loss():
    """Three background cells and a digit cell, hand-evaluated −(1 − p_y)^γ·log p_y."""
    logits = np.array([[4.0, 0.0, 0.0], [1.0, 0.0, 0.5], [6.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    classes = np.array([0, 0, 0, 1])
    analysis = softmax_loss_share_analysis(logits, classes, gammas=(0.0, 2.0))
    for gamma in (0.0, 2.0):
        losses = []
        for row, y in zip(logits, classes):
            p = math.exp(row[y]) / sum(math.exp(v) for v in row)
            losses.append(-(1 - p) ** gamma * math.log(p))
        negative = sorted(losses[:3])
        expected = negative[0] / sum(negative)
        assert analysis["negatives"]["easiest"][str(gamma)]["0.5"] == pytest.approx(expected)
    assert analysis["negatives"]["count"] == 3 and analysis["positives"]["count"] == 1


def test_the_log_reader_takes_train_and_test_losses_and_the_last_iteration_once():
    curves = LossCurves()
    lines = [
        "I1128 22:59:22.1 9736 solver.cpp:346] Iteration 0, Testing net (#0)",
        "I1128 22:59:22.2 9736 solver.cpp:413]     Test net output #0: loss = 0.9 (* 1 = 0.9 loss)",
        "I1128 22:59:22.3 9736 solver.cpp:231] Iteration 0, loss = 1.5",
        "I1128 22:59:22.4 9736 solver.cpp:247]     Train net output #0: loss = 1.5 (* 1 = 1.5 loss)",
        "I1128 22:59:22.5 9736 solver.cpp:231] Iteration 20 (12.5 iter/s, 1.6s/20 iters), loss = nan",
        "I1128 22:59:22.6 9736 solver.cpp:320] Iteration 20, loss = 0.25",
    ]
    reported = [curves.read_line(line) for line in lines]
    assert reported == [None, None, 0, None, 20, 20]
    assert curves.test == [(0, 0.9)]
    assert curves.train[0] == (0, 1.5) and curves.train[1][0] == 20 and math.isnan(curves.train[1][1])
    assert len(curves.train) == 2


def test_canvases_have_one_positive_cell_per_digit_at_its_centre_and_a_band_around_it():
    digits = DigitImages(np.ones((4, 1, 8, 8), np.float32), np.array([0, 3, 7, 9]))
    canvases, labels = make_canvases(digits, 50, seed=5)
    assert canvases.shape == (50, 1, 64, 64) and labels.shape == (50, 1, GRID, GRID)
    for canvas, label in zip(canvases[:, 0], labels[:, 0]):
        positives = np.argwhere(label > 0)
        assert 1 <= len(positives) <= 3
        assert canvas.sum() == 64 * len(positives)       # whole digits, never overlapping
        for row, col in positives:
            assert label[row, col] - 1 in (0, 3, 7, 9)
            # The cell holds the digit's centre: the pixels around its centre are ink.
            centre = canvas[row * STRIDE:(row + 1) * STRIDE, col * STRIDE:(col + 1) * STRIDE]
            assert centre.sum() > 0
            band = label[max(row - 1, 0):row + 2, max(col - 1, 0):col + 2]
            assert np.count_nonzero(band == IGNORE_LABEL) == band.size - 1
        assert np.count_nonzero(label == IGNORE_LABEL) <= 8 * len(positives)


def test_per_class_targets_and_mask_say_what_the_index_labels_say():
    labels = np.array([0, 3, IGNORE_LABEL, 10], np.float32).reshape(1, 1, 2, 2)
    targets, mask = per_class_targets(labels)
    assert targets.shape == mask.shape == (1, 10, 2, 2)
    assert targets[0, :, 0, 0].sum() == 0
    assert targets[0, 2, 0, 1] == 1 and targets[0, :, 0, 1].sum() == 1
    assert targets[0, 9, 1, 1] == 1
    assert np.all(mask[0, :, 1, 0] == 0) and mask.sum() == 30


def test_the_cumulative_share_goes_easiest_first():
    share = cumulative_share(np.array([3.0, 1.0, 0.0, 6.0]))
    assert share.tolist() == [0.0, 0.1, 0.4, 1.0]
    assert share_of_easiest(share, 0.5) == pytest.approx(0.1)
    assert share_of_easiest(share, 0.2) == 0.0
