"""The softmax fast path (focal_loss_layer.softmax_fast / kernels.softmax_pass) against the
gradient-checked numpy core, over every option and kind of γ, at the kernel's own edges (block
and sample boundaries, C == 1 and 2, many classes, tied and saturated logits, threads), its
errors against the reference checks', and its memory. Both of the kernel's paths get each check:
positions along a sample (S > 1, _segment) and rows of classes (S == 1, _rows)."""
import json
import tracemalloc

import numpy as np
import pytest
from cases import SOFTMAX_NORMALIZATIONS, SOFTMAX_OPTION_SETS, make_softmax_case, softmax_kwargs
from fast_checks import (
    assert_float32_close,
    assert_same_error,
    assert_threads_bit_identical,
    forward_backward,
)

from focal_loss_layer import kernels
from focal_loss_layer.errors import InputError
from focal_loss_layer.fast import PARALLEL_MIN_SIZE, check_finite
from focal_loss_layer.labels import CLASSES, check_labels
from focal_loss_layer.params import parse_softmax_param_str
from focal_loss_layer.softmax_core import softmax_focal_loss_and_gradient
from focal_loss_layer.softmax_fast import SoftmaxFocalLossKernel

GAMMAS_ALL = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0)


def fast(logits, labels, settings, threads=None, loss_weight=1.0):
    """(loss, ∂(loss_weight·loss)/∂x) from the fast path, as the layer computes them."""
    params = parse_softmax_param_str(json.dumps(settings))
    kernel = SoftmaxFocalLossKernel(params, logits.shape, labels.shape, threads=threads)
    return forward_backward(kernel, logits, labels, loss_weight)


def reference(logits, labels, settings):
    """(loss, ∂loss/∂x) from softmax_core in float64 on the same float32 inputs."""
    return softmax_focal_loss_and_gradient(logits.astype(np.float64), labels,
                              **softmax_kwargs(settings, logits.shape[1]))


def assert_matches_core(logits, labels, settings, threads=None):
    logits, labels = logits.astype(np.float32), labels.astype(np.float32)
    return assert_float32_close(fast(logits, labels, settings, threads),
                                reference(logits, labels, settings))


SHAPES = {"NC": (5, 4), "NCS": (3, 4, 7), "NCHW": (2, 4, 3, 5), "NC1": (3, 4, 1)}


@pytest.mark.parametrize("gamma", GAMMAS_ALL)
@pytest.mark.parametrize("option", sorted(SOFTMAX_OPTION_SETS))
@pytest.mark.parametrize("layout", sorted(SHAPES) + ["N1S labels"])
def test_every_option_layout_and_gamma_matches_core(option, gamma, layout):
    settings = dict(SOFTMAX_OPTION_SETS[option], focusing_parameter=gamma)
    shape = SHAPES.get(layout, (3, 4, 7))
    logits, labels = make_softmax_case(np.random.default_rng(11), shape,
                                       ignore_label=settings.get("ignore_label"))
    if layout == "N1S labels":
        labels = labels.reshape(3, 1, 7)
    assert_matches_core(logits, labels, settings)


@pytest.mark.parametrize("normalization", SOFTMAX_NORMALIZATIONS)
@pytest.mark.parametrize("shape", [(6, 5), (2, 5, 4, 3)], ids=str)
def test_every_normalization_matches_core(normalization, shape):
    settings = {"normalization": normalization, "ignore_label": -1, "alpha": 0.25}
    logits, labels = make_softmax_case(np.random.default_rng(12), shape, ignore_label=-1)
    assert_matches_core(logits, labels, settings)


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0])
@pytest.mark.parametrize("layout", ["NC", "NCS", "NC wide"])
def test_saturated_and_tied_logits_stay_finite_and_match_core(gamma, layout):
    """±1e4, ±100 (exp underflows float32), ±20, ties at the maximum, every label. NC wide: 37
    more classes at −50, a mass the float32 sum must keep."""
    rows = [[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0], [100.0, -100.0, 99.0],
            [20.0, 0.0, -20.0], [-88.0, 88.0, 88.0], [1e4, 1e4, -1e4], [1e-3, 0.0, -1e-3]]
    table = np.array([row for row in rows for _ in range(3)], dtype=np.float64)
    labels = np.array([0.0, 1.0, 2.0] * len(rows))
    if layout == "NCS":   # the same positions along a spatial axis: (1, 3, 24)
        table, labels = table.T[None], labels[None]
    if layout == "NC wide":
        table = np.concatenate([table, np.full((len(table), 37), -50.0)], axis=1)
    settings = {"focusing_parameter": gamma, "normalization": "none"}
    grad, _ = assert_matches_core(table, labels, settings)
    assert np.isfinite(grad).all()
    assert np.all(np.abs(grad) <= 1 + gamma / np.e + 1e-6)


@pytest.mark.parametrize("spatial", [1, 7, kernels.SOFTMAX_BLOCK - 1, kernels.SOFTMAX_BLOCK,
                                     kernels.SOFTMAX_BLOCK + 1, 2 * kernels.SOFTMAX_BLOCK + 3])
def test_block_and_sample_boundaries(spatial):
    """Samples of odd length (S) end inside blocks at every offset; blocks cross samples."""
    settings = {"focusing_parameter": 1.5, "ignore_label": 255, "class_balances": [0.5, 2.0, 1.0]}
    logits, labels = make_softmax_case(np.random.default_rng(13), (3, 3, spatial),
                                       ignore_label=255)
    assert_matches_core(logits, labels, settings)


@pytest.mark.parametrize("samples", [kernels.SOFTMAX_BLOCK - 1, kernels.SOFTMAX_BLOCK + 3,
                                     3 * kernels.SOFTMAX_BLOCK])
def test_without_spatial_dims_blocks_are_runs_of_samples(samples):
    settings = {"focusing_parameter": 2, "alpha": 0.25, "ignore_label": -1}
    logits, labels = make_softmax_case(np.random.default_rng(14), (samples, 5), ignore_label=-1)
    assert_matches_core(logits, labels, settings)


@pytest.mark.parametrize("shape", [(300, 1000), (2, 1000, 70), (3, 200, 400)], ids=str)
def test_many_classes_make_blocks_of_fewer_positions(shape):
    """C·block stays near BLOCK_LOGITS: 65 positions of 1000 classes, 327 of 200; blocks cross
    samples (S = 70 and 400 are not multiples)."""
    block = kernels.softmax_block_positions(shape[1])
    assert block < kernels.SOFTMAX_BLOCK and block * shape[1] <= kernels.SOFTMAX_BLOCK_LOGITS
    settings = {"focusing_parameter": 2, "ignore_label": -1}
    logits, labels = make_softmax_case(np.random.default_rng(22), shape, ignore_label=-1)
    assert_matches_core(logits, labels, settings)
    assert_threads_bit_identical(lambda threads: fast(logits.astype(np.float32),
                                                      labels.astype(np.float32), settings, threads))


@pytest.mark.parametrize("shape", [(4, 1), (3, 1, 5)], ids=str)
def test_a_single_class_has_zero_loss_and_gradient(shape):
    logits, labels = make_softmax_case(np.random.default_rng(15), shape)
    loss, grad = fast(logits.astype(np.float32), labels.astype(np.float32), {})
    assert loss == 0 and np.all(grad == 0)
    assert_matches_core(logits, labels, {})


@pytest.mark.parametrize("layout", ["NC", "NCS"])
def test_threads_give_bit_identical_results(layout):
    """Per-block sums are added in a fixed order, so the result does not depend on threads."""
    settings = {"focusing_parameter": 1.5, "ignore_label": -1, "normalization": "valid"}
    shape = (PARALLEL_MIN_SIZE // 4 + 11, 4) if layout == "NC" else (2, 4, PARALLEL_MIN_SIZE // 8 + 11)
    logits, labels = make_softmax_case(np.random.default_rng(16), shape, ignore_label=-1)
    logits, labels = logits.astype(np.float32), labels.astype(np.float32)
    assert_threads_bit_identical(lambda threads: fast(logits, labels, settings, threads))
    assert_matches_core(logits, labels, settings)


def test_loss_weight_scales_the_gradient_only():
    logits, labels = make_softmax_case(np.random.default_rng(17), (3, 4, 5))
    logits, labels = logits.astype(np.float32), labels.astype(np.float32)
    unit, weighted = fast(logits, labels, {}), fast(logits, labels, {}, loss_weight=2.5)
    assert unit[0] == weighted[0]
    np.testing.assert_allclose(weighted[1], 2.5 * unit[1], rtol=1e-6)


@pytest.mark.parametrize("ignore_label", [-1, 0, 2])
def test_ignored_positions_get_exactly_zero_gradient_even_inside_the_class_range(ignore_label):
    logits, labels = make_softmax_case(np.random.default_rng(18), (3, 4, 6),
                                       ignore_label=ignore_label, ignored=0.3)
    _, grad = fast(logits.astype(np.float32), labels.astype(np.float32),
                   {"ignore_label": ignore_label})
    ignored = np.broadcast_to((labels == ignore_label)[:, None], grad.shape)
    assert ignored.any() and np.all(grad[ignored] == 0) and np.all(grad[~ignored] != 0)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.5, 2.0])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0, 0), (1, 2, 4), (1, 3, 2)])
@pytest.mark.parametrize("layout", ["NCS", "NC"])
def test_non_finite_logits_raise_the_reference_message(bad, where, layout, gamma):
    """Even at an ignored position or in a class that weighs 0, whatever γ (at γ = 0 the loss
    does not depend on (1−p)^γ, where a NaN would show by itself). NC: the same values as
    (N·S, C) rows."""
    settings = {"ignore_label": -1, "class_balances": [1.0, 1.0, 0.0, 1.0],
                "focusing_parameter": gamma}
    logits, labels = make_softmax_case(np.random.default_rng(19), (2, 4, 5), ignore_label=-1)
    logits, labels = logits.astype(np.float32), labels.astype(np.float32)
    labels[1, 4] = -1
    logits[where] = bad
    if layout == "NC":
        logits, labels = logits.transpose(0, 2, 1).reshape(10, 4).copy(), labels.reshape(10)
    assert_same_error(lambda: check_finite(logits), lambda: fast(logits, labels, settings))


@pytest.mark.parametrize("value, settings", [
    (4.0, {}), (1.5, {}), (-1.0, {}), (np.inf, {}), (np.nan, {}), (7.0, {"ignore_label": 255}),
    (255.0, {"ignore_label": -1}),
])
@pytest.mark.parametrize("shape", [(2, 4, 3), (6, 4)], ids=str)
def test_bad_labels_raise_the_reference_message(value, settings, shape):
    logits, labels = make_softmax_case(np.random.default_rng(20), shape)
    labels = labels.astype(np.float32)
    labels.reshape(-1)[4] = value
    params = parse_softmax_param_str(json.dumps(settings))
    message = assert_same_error(lambda: check_labels(labels, CLASSES, 4, params.ignore_label),
                                lambda: fast(logits.astype(np.float32), labels, settings))
    assert "class labels must be integers 0..3" in message


def test_label_shape_fitting_no_position_layout_is_refused_when_the_kernel_is_made():
    params = parse_softmax_param_str("")
    with pytest.raises(InputError, match=r"class labels need shape \(2, 5\) or \(2, 1, 5\)"):
        SoftmaxFocalLossKernel(params, (2, 3, 5), (2, 3, 5))


def test_backward_needs_a_completed_forward():
    params = parse_softmax_param_str("")
    kernel = SoftmaxFocalLossKernel(params, (2, 3), (2,))
    logits, labels = np.zeros((2, 3), np.float32), np.array([0, 5], np.float32)
    with pytest.raises(RuntimeError, match="needs a forward that completed first"):
        kernel.backward(1.0, np.empty_like(logits))
    with pytest.raises(InputError):
        kernel.forward(logits, labels)
    with pytest.raises(RuntimeError, match="needs a forward that completed first"):
        kernel.backward(1.0, np.empty_like(logits))


def test_a_layers_extra_memory_is_one_buffer_the_size_of_the_logits():
    """Peak extra memory of making the kernel (as reshape does), forward and backward, threads'
    scratch included: the kept gradient, one float32 buffer the size of the logits, plus a fixed
    ~88 KB per thread (at 5.5 MB of logits, 0.03×); the gradient is written into the caller's
    array, never a temporary."""
    shape = (4, 21, 128, 128)
    logits, labels = make_softmax_case(np.random.default_rng(21), shape, ignore_label=255)
    logits, labels = logits.astype(np.float32), labels.astype(np.float32)
    out = np.empty_like(logits)
    params = parse_softmax_param_str("{'focusing_parameter': 1.5, 'ignore_label': 255}")
    SoftmaxFocalLossKernel(params, shape, labels.shape).forward(logits, labels)   # compiled
    tracemalloc.start()
    kernel = SoftmaxFocalLossKernel(params, shape, labels.shape, threads=2)
    kernel.forward(logits, labels)
    kernel.backward(1.0, out)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert logits.nbytes <= peak < 1.1 * logits.nbytes, (peak, logits.nbytes)
    assert np.isfinite(out).all()


def test_loop_one_on_tied_and_saturated_logits():
    """Loop 1 of _segment (the max over the classes and the first class holding it, along the
    positions) on ties at the maximum, saturated logits and random ones, against the core: the
    tied rows, repeated along S = 96, and random logits at S = 37, 64 and 289."""
    rows = [[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0], [100.0, -100.0, 99.0],
            [-88.0, 88.0, 88.0], [1e4, 1e4, -1e4], [3.0, 3.0, 3.0], [1e-3, 0.0, -1e-3]]
    table = np.array([row for row in rows for _ in range(12)], dtype=np.float64)   # (96, 3)
    labels = np.array([0.0, 1.0, 2.0] * (len(table) // 3))
    for gamma in (0.0, 2.0, 1.5):
        assert_matches_core(table.T[None], labels[None], {"focusing_parameter": gamma})
    rng = np.random.default_rng(3)
    for spatial in (37, 64, 289):
        logits, labels = make_softmax_case(rng, (2, 5, spatial), ignore_label=255)
        assert_matches_core(logits, labels, {"focusing_parameter": 2, "ignore_label": 255})
