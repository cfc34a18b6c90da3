"""The softmax numpy core (focal_loss_layer.softmax_core): central differences in float64, the
naive per-position loop, cross-entropy at γ = 0, the sigmoid form at C = 2, and the numerics at
saturated logits."""
import json

import numpy as np
import pytest
from cases import GAMMAS, SOFTMAX_NORMALIZATIONS, SOFTMAX_OPTION_SETS, make_softmax_case, softmax_kwargs
from gradcheck import assert_matches_central_differences
from naive_reference import naive_softmax_focal_loss

from focal_loss_layer.core import focal_terms
from focal_loss_layer.errors import InputError
from focal_loss_layer.softmax_core import softmax_focal_loss_and_gradient, softmax_focal_terms

SHAPES = [(3, 4), (2, 4, 3), (2, 4, 2, 3)]


def loss_and_grad(logits, labels, settings):
    """The core driven as the layer drives it, from param_str settings."""
    return softmax_focal_loss_and_gradient(logits, labels, **softmax_kwargs(settings, logits.shape[1]))


def settings_for(name, gamma, normalization=None):
    settings = dict(SOFTMAX_OPTION_SETS[name], focusing_parameter=gamma)
    if normalization:
        settings["normalization"] = normalization
    return settings


# (settings, logits shape): every option set, γ and layout; every normalization with ignored
# positions, α and class balances.
GRADIENT_CASES = (
    [pytest.param(settings_for(option, gamma), shape, id=f"{option}-gamma{gamma}-{shape}")
     for gamma in GAMMAS + (1.5, 0.25) for option in sorted(SOFTMAX_OPTION_SETS)
     for shape in SHAPES]
    + [pytest.param({"focusing_parameter": gamma, "normalization": normalization,
                     "ignore_label": 255, "alpha": 0.4, "class_balances": [1.0, 2.0, 0.5, 1.0]},
                    (3, 4, 2, 3), id=f"{normalization}-gamma{gamma}-ignored")
       for normalization in SOFTMAX_NORMALIZATIONS for gamma in (0.0, 0.5, 2.0)])


@pytest.mark.parametrize("settings, shape", GRADIENT_CASES)
def test_gradient_matches_central_differences(settings, shape):
    logits, labels = make_softmax_case(np.random.default_rng(7), shape,
                                       ignore_label=settings.get("ignore_label"), ignored=0.3)
    assert_matches_central_differences(lambda x: loss_and_grad(x, labels, settings), logits)


@pytest.mark.parametrize("gamma", GAMMAS + (1.5,))
@pytest.mark.parametrize("option_set", sorted(SOFTMAX_OPTION_SETS))
@pytest.mark.parametrize("normalization", SOFTMAX_NORMALIZATIONS)
def test_agrees_with_naive_per_position_loop(gamma, option_set, normalization):
    rng = np.random.default_rng(3)
    settings = settings_for(option_set, gamma, normalization)
    logits, labels = make_softmax_case(rng, (3, 4, 2, 2), ignore_label=settings.get("ignore_label"))
    kwargs = softmax_kwargs(settings, 4)
    loss, grad = softmax_focal_loss_and_gradient(logits, labels, **kwargs)
    naive_loss, naive_grad = naive_softmax_focal_loss(logits, labels, **kwargs)
    np.testing.assert_allclose(loss, naive_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, naive_grad, rtol=1e-9, atol=1e-15)


def test_gamma_zero_is_softmax_cross_entropy_with_gradient_p_minus_one_hot():
    rng = np.random.default_rng(0)
    logits, labels = make_softmax_case(rng, (5, 6, 3))
    loss, grad = softmax_focal_loss_and_gradient(logits, labels, focusing_parameter=0.0, normalization="none")
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    one_hot = (labels[:, None] == np.arange(6)[None, :, None]).astype(float)
    np.testing.assert_allclose(loss, -np.sum(one_hot * np.log(p)), rtol=1e-12)
    np.testing.assert_allclose(grad, p - one_hot, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_two_classes_are_the_sigmoid_focal_loss_of_the_logit_difference(gamma):
    """softmax([x0, x1])_1 = σ(x1 − x0): label 1 is ℓ⁺ of z = x1 − x0, label 0 is ℓ⁻ of it, and
    the gradient is ±dℓ/dz."""
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=4.0, size=(6, 2))
    labels = np.array([0, 1, 0, 1, 1, 0], dtype=float)
    loss, grad = softmax_focal_loss_and_gradient(logits, labels, focusing_parameter=gamma, normalization="none")
    z = logits[:, 1] - logits[:, 0]
    pos, neg, pos_grad, neg_grad = focal_terms(z, gamma)
    expected = np.where(labels == 1, pos, neg)
    dz = np.where(labels == 1, pos_grad, neg_grad)
    np.testing.assert_allclose(loss, expected.sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, np.stack([-dz, dz], axis=1), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("gamma", GAMMAS[1:])
def test_easy_positions_are_down_weighted_by_exactly_one_minus_p_to_gamma(gamma):
    rng = np.random.default_rng(2)
    logits, labels = make_softmax_case(rng, (8, 5), scale=4.0)
    focal, _ = softmax_focal_terms(logits, labels, gamma)
    cross_entropy, _ = softmax_focal_terms(logits, labels, 0.0)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p_y = np.take_along_axis(p, labels.astype(int)[:, None], axis=1)[:, 0]
    np.testing.assert_allclose(focal / cross_entropy, (1 - p_y) ** gamma, rtol=1e-12)
    assert np.all(focal <= cross_entropy) and np.any(focal < cross_entropy)


def test_alpha_weighs_class_zero_by_one_minus_alpha_and_the_others_by_alpha():
    """Detectron's SoftmaxFocalLoss: α for foreground classes 1..C−1, 1 − α for class 0."""
    rng = np.random.default_rng(4)
    logits, labels = make_softmax_case(rng, (20, 4))
    terms, _ = softmax_focal_terms(logits, labels, 2.0)
    weighted, _ = softmax_focal_loss_and_gradient(logits, labels, alpha=0.25, normalization="none")
    expected = np.sum(np.where(labels == 0, 0.75, 0.25) * terms)
    assert (labels == 0).any() and (labels > 0).any()
    np.testing.assert_allclose(weighted, expected, rtol=1e-12)
    only_background, grad = softmax_focal_loss_and_gradient(logits, labels, alpha=0.0, normalization="none")
    np.testing.assert_allclose(only_background, terms[labels == 0].sum(), rtol=1e-12)
    assert np.all(grad[labels > 0] == 0) and np.all(grad[labels == 0] != 0)


def test_class_balances_weigh_each_position_by_its_label_class():
    rng = np.random.default_rng(5)
    logits, labels = make_softmax_case(rng, (12, 3, 2))
    weights = np.array([0.5, 2.0, 3.0])
    terms, _ = softmax_focal_terms(logits, labels, 2.0)
    loss, _ = softmax_focal_loss_and_gradient(logits, labels, class_balances=weights, normalization="none")
    np.testing.assert_allclose(loss, np.sum(weights[labels.astype(int)] * terms), rtol=1e-12)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_ignored_positions_give_zero_loss_and_gradient_and_do_not_count(shape):
    rng = np.random.default_rng(6)
    logits, labels = make_softmax_case(rng, shape, ignore_label=-1, ignored=0.4)
    ignored = np.broadcast_to(np.expand_dims(labels == -1, 1), logits.shape)
    assert ignored.any() and (~ignored).any()
    loss, grad = softmax_focal_loss_and_gradient(logits, labels, ignore_label=-1, normalization="none")
    assert np.all(grad[ignored] == 0)
    wild = logits.copy()
    wild[ignored] = rng.normal(scale=50, size=np.count_nonzero(ignored))
    assert softmax_focal_loss_and_gradient(wild, labels, ignore_label=-1, normalization="none")[0] == loss
    valid = np.count_nonzero(labels != -1)
    mean = softmax_focal_loss_and_gradient(logits, labels, ignore_label=-1, normalization="valid")[0]
    np.testing.assert_allclose(mean, loss / valid, rtol=1e-14)


def test_normalizations_divide_by_positions_samples_or_one_and_at_least_one():
    rng = np.random.default_rng(8)
    logits, labels = make_softmax_case(rng, (3, 4, 5), ignore_label=255, ignored=0.3)
    total = softmax_focal_loss_and_gradient(logits, labels, ignore_label=255, normalization="none")[0]
    valid = np.count_nonzero(labels != 255)
    for normalization, divisor in (("valid", valid), ("full", 15), ("batch_size", 3), ("none", 1)):
        loss = softmax_focal_loss_and_gradient(logits, labels, ignore_label=255, normalization=normalization)[0]
        np.testing.assert_allclose(loss, total / divisor, rtol=1e-14)
    everything_ignored = np.full_like(labels, 255)
    loss, grad = softmax_focal_loss_and_gradient(logits, everything_ignored, ignore_label=255)
    assert loss == 0 and np.all(grad == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0, 2.0, 5.0])
def test_finite_loss_and_bounded_gradient_at_saturated_logits(dtype, gamma):
    """Logits up to ±1e4: the labelled class far above, far below, tied, and in between. The
    gradient's entries sum to 0 per position and are bounded (|dℓ/dx_y| ≤ 1 + γ/e, the others
    by 1 + γ/e together)."""
    rows = [[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0], [90.0, -90.0, 89.0],
            [17.0, 0.0, -17.0], [-200.0, 200.0, 200.0], [1e4, 1e4, -1e4]]
    logits = np.array([row for row in rows for _ in range(3)], dtype=dtype)
    labels = np.array([0.0, 1.0, 2.0] * len(rows))
    loss, grad = softmax_focal_loss_and_gradient(logits, labels, focusing_parameter=gamma, normalization="none")
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    bound = 1.0 + gamma / np.e + 1e-6
    assert np.all(np.abs(grad) <= bound)
    assert np.all(np.abs(grad).sum(axis=1) <= 2 * bound)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-6)


def test_no_87_cap_a_wrong_saturated_position_grows_linearly():
    """SoftmaxWithLoss takes log(max(p, FLT_MIN)), capping a position's loss at 87.34; here it
    keeps growing with the logit gap, with gradient −1 on the label and +1 on the winner."""
    logits = np.array([[-1e4, 0.0], [-200.0, 0.0]], dtype=np.float32)
    terms, grad = softmax_focal_terms(logits, np.array([0, 0]), 0.0)
    np.testing.assert_allclose(terms, [1e4, 200.0], rtol=1e-6)
    np.testing.assert_allclose(grad, [[-1.0, 1.0], [-1.0, 1.0]], rtol=1e-6)


def test_one_minus_p_keeps_its_precision_when_p_is_almost_one():
    """x = (0, −30, −40): 1 − p ≈ e^−30, which 1 − p would round to 0 in float64; the loss at
    γ = 0 is −log p ≈ e^−30 + e^−40, and at γ = 1 it is (1 − p)·(−log p)."""
    logits = np.array([[0.0, -30.0, -40.0]])
    rest = np.exp(-30.0) + np.exp(-40.0)
    ce, _ = softmax_focal_terms(logits, np.array([0]), 0.0)
    focal, grad = softmax_focal_terms(logits, np.array([0]), 1.0)
    np.testing.assert_allclose(ce, [np.log1p(rest)], rtol=1e-14)
    np.testing.assert_allclose(focal, [rest / (1 + rest) * np.log1p(rest)], rtol=1e-14)
    # dℓ/dx_y = −(1−p)·(1 − p + p·(−log p)) ≈ −2·rest², relatively exact
    np.testing.assert_allclose(grad[0, 0], -2 * rest ** 2, rtol=1e-12)


def test_tied_maxima_count_exactly():
    """Three classes tied at the maximum: Z = 3 exactly, p = 1/3 each."""
    logits = np.array([[5.0, 5.0, 5.0, -100.0]])
    for label in (0, 1, 2):
        ce, grad = softmax_focal_terms(logits, np.array([label]), 0.0)
        np.testing.assert_allclose(ce, [np.log(3 + np.exp(-105.0))], rtol=1e-15)
        np.testing.assert_allclose(grad[0, label], -2 / 3, rtol=1e-14)


@pytest.mark.parametrize("labels, message", [
    (np.array([0.0, 4.0]), r"the first is 4.0 at index \(1,\): class labels must be integers 0..3"),
    (np.array([1.5, 0.0]), r"the first is 1.5 at index \(0,\)"),
    (np.array([-1.0, 0.0]), r"the first is -1.0 .* \(no ignore_label is set\)"),
    (np.zeros((2, 4)), r"bottom\[1\] \(labels\) has shape \(2, 4\), which does not fit logits of "
                       r"shape \(2, 4\): class labels need shape \(2,\) or \(2, 1\)"),
])
def test_labels_outside_0_to_c_minus_1_or_of_the_wrong_shape_are_refused(labels, message):
    with pytest.raises(InputError, match=message):
        softmax_focal_loss_and_gradient(np.zeros((2, 4)), labels)


def test_inputs_are_not_modified_and_n1_labels_read_alike():
    rng = np.random.default_rng(9)
    logits, labels = make_softmax_case(rng, (2, 3, 4), ignore_label=-1)
    before = logits.copy(), labels.copy()
    flat = softmax_focal_loss_and_gradient(logits, labels, ignore_label=-1)
    n1 = softmax_focal_loss_and_gradient(logits, labels.reshape(2, 1, 4), ignore_label=-1)
    np.testing.assert_array_equal(logits, before[0])
    np.testing.assert_array_equal(labels, before[1])
    assert flat[0] == n1[0]
    np.testing.assert_array_equal(flat[1], n1[1])


def test_settings_from_param_str_reach_the_core():
    """param_str, parsed as the layer parses it, drives the core: loss and gradient are the naive
    loop's with every setting written out by hand, and each setting changes the result."""
    settings = {"focusing_parameter": 1.5, "alpha": 0.3, "class_balances": {"2": 4.0},
                "ignore_label": 9, "normalization": "batch_size"}
    logits, labels = make_softmax_case(np.random.default_rng(11), (4, 3, 5), ignore_label=9,
                                       ignored=0.25)
    valid = labels[labels != 9]
    assert {0, 1, 2} <= set(valid.tolist()) and len(valid) < labels.size   # every case present
    loss, grad = loss_and_grad(logits, labels, json.loads(json.dumps(settings)))
    expected_loss, expected_grad = naive_softmax_focal_loss(
        logits, labels, focusing_parameter=1.5, alpha=0.3, class_balances=[1.0, 1.0, 4.0],
        ignore_label=9, normalization="batch_size")
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-15)
    for key in ("focusing_parameter", "alpha", "class_balances", "normalization"):
        without = {k: v for k, v in settings.items() if k != key}
        assert abs(loss_and_grad(logits, labels, without)[0] - loss) > 1e-3 * loss, key
    # Without ignore_label the 9s are labels outside 0..2.
    with pytest.raises(InputError, match=r"the first is 9.0 .* class labels must be integers 0..2"):
        loss_and_grad(logits, labels, {k: v for k, v in settings.items() if k != "ignore_label"})
