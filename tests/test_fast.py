"""The fast path (focal_loss_layer.fast / .kernels) against the gradient-checked numpy core, over
every option, label form and kind of γ, at the kernel's own edges (block and row boundaries,
S == 1, C == 1, saturated logits, threads), and its errors against the reference checks'."""
import json
import os
import signal
import time

import numpy as np
import pytest
from cases import GAMMAS, NORMALIZATIONS, OPTION_SETS, make_case
from fast_checks import (
    assert_float32_close,
    assert_same_error,
    assert_threads_bit_identical,
    forward_backward,
)
from floor_check import sigmoid_reference

from focal_loss_layer import kernels
from focal_loss_layer.errors import InputError
from focal_loss_layer.fast import PARALLEL_MIN_SIZE, FocalLossKernel, check_finite
from focal_loss_layer.labels import check_labels, label_form
from focal_loss_layer.params import parse_param_str


def fast(logits, labels, settings, threads=None):
    """(loss, ∂loss/∂x) from the fast path, as the layer computes them (loss_weight 1)."""
    params = parse_param_str(json.dumps(settings))
    return forward_backward(FocalLossKernel(params, logits.shape, labels.shape, threads=threads),
                            logits, labels)


# The float64 reference of the layer's settings; floor_check, which runs in the floor-version
# venv without pytest, holds it so that both use one.
reference = sigmoid_reference


def assert_matches_core(logits, labels, settings, threads=None):
    logits, labels = logits.astype(np.float32), labels.astype(np.float32)
    return assert_float32_close(fast(logits, labels, settings, threads),
                                reference(logits, labels, settings))


def case(seed, form, shape, settings, soft=False, scale=3.0):
    rng = np.random.default_rng(seed)
    return make_case(rng, form, shape=shape, ignore_label=settings.get("ignore_label"), soft=soft,
                     scale=scale)


GAMMAS_ALL = sorted(set(GAMMAS) | {1.5, 3.0, 4.0, 0.25, 7.0})


@pytest.mark.parametrize("gamma", GAMMAS_ALL)
@pytest.mark.parametrize("option", sorted(OPTION_SETS))
@pytest.mark.parametrize("form", ["targets", "soft", "indices", "indices_n1"])
def test_every_option_label_form_and_gamma_matches_core(option, gamma, form):
    settings = dict(OPTION_SETS[option], focusing_parameter=gamma)
    shape = (3, 3, 7)
    logits, labels = case(11, "targets" if form == "soft" else form.split("_")[0], shape,
                          settings, soft=form == "soft")
    if form == "indices_n1":
        labels = labels.reshape(3, 1, 7)
    assert_matches_core(logits, labels, settings)


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
@pytest.mark.parametrize("form", ["targets", "indices"])
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4, 5)])
def test_every_normalization_matches_core(normalization, form, shape):
    settings = {"normalization": normalization, "ignore_label": -1, "alpha": 0.25}
    logits, labels = case(12, form, shape, settings)
    assert_matches_core(logits, labels, settings)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 1.5, 2.0, 5.0])
@pytest.mark.parametrize("form", ["targets", "indices"])
def test_saturated_logits_stay_finite_and_match_core(gamma, form):
    """±1e4, ±100 (exp underflows float32) and ±20 (1 + e^−20 rounds to 1), every target."""
    values = np.array([-1e4, -100.0, -88.0, -87.0, -20.0, -1e-3, 0.0, 1e-3, 20.0, 87.0, 88.0,
                       100.0, 1e4])
    logits = np.tile(values, (4, 2, 1))
    if form == "targets":
        labels = np.zeros_like(logits)
        labels[0], labels[2] = 1.0, 0.5
    else:
        labels = np.tile(np.array([0.0, 1.0, 2.0, 1.0]).reshape(4, 1), (1, values.size))
    settings = {"focusing_parameter": gamma, "normalization": "none"}
    grad, _ = assert_matches_core(logits, labels, settings)
    assert np.isfinite(grad).all()
    assert np.all(np.abs(grad) <= 1 + gamma / np.e + 1e-6)


@pytest.mark.parametrize("size", [1, 7, kernels.BLOCK - 1, kernels.BLOCK, kernels.BLOCK + 1,
                                  2 * kernels.BLOCK + 3])
@pytest.mark.parametrize("form", ["targets", "indices"])
def test_block_boundaries_and_odd_sizes(size, form):
    """Rows of odd length (S = size) cross block boundaries at every offset."""
    settings = {"focusing_parameter": 1.5, "ignore_label": 255, "class_balances": [0.5, 2.0, 1.0]}
    logits, labels = case(13, form, (2, 3, size), settings)
    assert_matches_core(logits, labels, settings)


@pytest.mark.parametrize("shape", [(kernels.BLOCK // 3 + 5, 3), (4001, 5)])
@pytest.mark.parametrize("form", ["targets", "indices"])
def test_class_axis_segments_cross_blocks_when_there_are_no_spatial_dims(shape, form):
    """S == 1: segments are one sample's C classes; C does not divide BLOCK."""
    settings = {"focusing_parameter": 2, "alpha": 0.25, "ignore_label": -1}
    logits, labels = case(14, form, shape, settings)
    assert_matches_core(logits, labels, settings)


@pytest.mark.parametrize("shape", [(4, 1), (3, 1, 5), (2, 1, 3, 3)])
@pytest.mark.parametrize("form", ["targets", "indices"])
def test_a_single_class(shape, form):
    settings = {"focusing_parameter": 2, "normalization": "positives"}
    logits, labels = case(15, form, shape, settings)
    assert_matches_core(logits, labels, settings)


@pytest.mark.parametrize("form", ["targets", "indices"])
def test_threads_give_bit_identical_results(form):
    """Per-block sums are added in a fixed order, so the result does not depend on threads."""
    settings = {"focusing_parameter": 1.5, "ignore_label": -1, "normalization": "valid"}
    logits, labels = case(16, form, (2, 3, PARALLEL_MIN_SIZE // 4 + 11), settings)
    logits, labels = logits.astype(np.float32), labels.astype(np.float32)
    assert_threads_bit_identical(lambda threads: fast(logits, labels, settings, threads))
    assert_matches_core(logits, labels, settings)


def test_ignored_logits_get_exactly_zero_gradient():
    settings = {"ignore_label": -1, "label_smoothing": 0.2}
    logits, labels = case(17, "targets", (3, 4, 5), settings)
    _, grad = fast(logits.astype(np.float32), labels.astype(np.float32), settings)
    assert np.all(grad[labels == -1] == 0) and np.all(grad[labels != -1] != 0)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.5, 2.0])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0, 0), (1, 2, 4), (1, 0, 2)])
def test_non_finite_logits_raise_the_reference_message(bad, where, gamma):
    """Even where the logit is ignored or its class weighs 0, whatever γ: the check does not
    depend on the coefficients."""
    settings = {"ignore_label": -1, "class_balances": [1.0, 0.0, 1.0], "focusing_parameter": gamma}
    logits, labels = case(18, "targets", (2, 3, 5), settings)
    logits = logits.astype(np.float32)
    labels = labels.astype(np.float32)
    labels[1, 2, 4] = -1
    logits[where] = bad
    assert_same_error(lambda: check_finite(logits), lambda: fast(logits, labels, settings))


@pytest.mark.parametrize("form, value, settings", [
    ("targets", 2.0, {}), ("targets", -0.5, {}), ("targets", np.nan, {}),
    ("targets", 255.0, {"ignore_label": -1}),
    ("indices", 4.0, {}), ("indices", 1.5, {}), ("indices", -1.0, {}), ("indices", np.inf, {}),
    ("indices", 7.0, {"ignore_label": 255}),
])
def test_bad_labels_raise_the_reference_message(form, value, settings):
    logits, labels = case(19, form, (2, 3, 4), settings)
    labels = labels.astype(np.float32)
    labels.reshape(-1)[5] = value
    params = parse_param_str(json.dumps(settings))
    assert_same_error(
        lambda: check_labels(labels, label_form(logits.shape, labels.shape), 3, params.ignore_label),
        lambda: fast(logits.astype(np.float32), labels, settings))


def test_ignore_label_values_are_allowed_in_both_forms():
    for form in ("targets", "indices"):
        settings = {"ignore_label": 255}
        logits, labels = case(20, form, (3, 3, 4), settings)
        labels.reshape(-1)[::3] = 255
        assert_matches_core(logits, labels, settings)


def test_non_finite_logits_are_reported_before_bad_labels():
    logits = np.zeros((2, 3), np.float32)
    logits[1, 1] = np.nan
    labels = np.full((2, 3), 2.0, np.float32)
    with pytest.raises(InputError, match="non-finite"):
        fast(logits, labels, {})


def test_exp_and_log1p_polynomials_against_numpy():
    x = -np.concatenate([np.linspace(0, 90, 200001), [87.32, 87.34, 1e4]]).astype(np.float32)
    exp = np.array([kernels.exp_nonpositive(v) for v in x[::97]], np.float32)
    np.testing.assert_allclose(exp, np.exp(x[::97].astype(np.float64)), rtol=3e-7, atol=1.2e-38)
    u = np.concatenate([np.geomspace(1e-30, 1, 3001), [0.0]]).astype(np.float32)
    log1p = np.array([kernels.log1p_unit(v) for v in u], np.float32)
    np.testing.assert_allclose(log1p, np.log1p(u.astype(np.float64)), rtol=3e-7, atol=0)


def test_a_forked_child_runs_the_threaded_pass_after_its_parent_did():
    """The parent's thread pool does not survive fork; the child must make its own."""
    settings = {"focusing_parameter": 2}
    logits, labels = case(21, "targets", (2, 3, PARALLEL_MIN_SIZE // 4), settings)
    logits, labels = logits.astype(np.float32), labels.astype(np.float32)
    expected = fast(logits, labels, settings, threads=2)[0]
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if fast(logits, labels, settings, threads=2)[0] == expected else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the parent's thread pool")
    assert os.waitstatus_to_exitcode(done[1]) == 0
