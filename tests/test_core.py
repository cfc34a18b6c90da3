"""The numpy core: gradient checks, agreement with the naive loop, and the paper's properties."""
import json

import numpy as np
import pytest
from cases import GAMMAS, NORMALIZATIONS, OPTION_SETS, make_case, naive_kwargs
from gradcheck import assert_matches_central_differences
from naive_reference import naive_focal_loss

from focal_loss_layer.core import focal_terms, sigmoid_focal_loss_and_gradient
from focal_loss_layer.labels import read_labels
from focal_loss_layer.params import parse_param_str


def loss_and_grad(logits, labels, settings):
    """The core driven as the layer drives it: param_str settings, labels in either form."""
    params = parse_param_str(json.dumps(settings))
    read = read_labels(labels, logits.shape, params.ignore_label)
    return sigmoid_focal_loss_and_gradient(
        logits, read.targets, focusing_parameter=params.focusing_parameter, alpha=params.alpha,
        class_balances=params.class_weights(logits.shape[1]), valid=read.valid,
        label_smoothing=params.label_smoothing, normalization=params.normalization)


def settings_for(name, gamma, normalization=None):
    settings = dict(OPTION_SETS[name], focusing_parameter=gamma)
    if normalization:
        settings["normalization"] = normalization
    return settings


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("option_set", sorted(OPTION_SETS))
@pytest.mark.parametrize("form", ["targets", "indices"])
def test_gradient_matches_central_differences(gamma, option_set, form):
    rng = np.random.default_rng(7)
    settings = settings_for(option_set, gamma)
    logits, labels = make_case(rng, form, ignore_label=settings.get("ignore_label"))
    assert_matches_central_differences(lambda x: loss_and_grad(x, labels, settings), logits)


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_gradient_every_normalization_spatial_soft_targets(normalization, gamma):
    rng = np.random.default_rng(11)
    settings = {"focusing_parameter": gamma, "normalization": normalization, "ignore_label": -1,
                "label_smoothing": 0.05, "alpha": 0.4}
    logits, labels = make_case(rng, "targets", shape=(2, 3, 2, 3), ignore_label=-1, soft=True)
    assert_matches_central_differences(lambda x: loss_and_grad(x, labels, settings), logits)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("option_set", sorted(OPTION_SETS))
@pytest.mark.parametrize("form", ["targets", "indices"])
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_agrees_with_naive_per_element_loop(gamma, option_set, form, normalization):
    rng = np.random.default_rng(3)
    settings = settings_for(option_set, gamma, normalization)
    logits, labels = make_case(rng, form, shape=(3, 3, 2, 2),
                               ignore_label=settings.get("ignore_label"))
    loss, grad = loss_and_grad(logits, labels, settings)
    naive_loss, naive_grad = naive_focal_loss(logits, labels, **naive_kwargs(settings))
    np.testing.assert_allclose(loss, naive_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, naive_grad, rtol=1e-10, atol=1e-15)


def test_gamma_zero_is_sigmoid_cross_entropy_with_gradient_p_minus_t():
    rng = np.random.default_rng(0)
    logits, targets = make_case(rng, "targets", shape=(4, 5), soft=True)
    loss, grad = sigmoid_focal_loss_and_gradient(logits, targets, focusing_parameter=0.0, normalization="none")
    p = 1 / (1 + np.exp(-logits))
    cross_entropy = -np.sum(targets * np.log(p) + (1 - targets) * np.log(1 - p))
    np.testing.assert_allclose(loss, cross_entropy, rtol=1e-12)
    np.testing.assert_allclose(grad, p - targets, rtol=1e-12, atol=1e-15)


def test_gamma_zero_alpha_half_is_half_cross_entropy():
    rng = np.random.default_rng(1)
    logits, targets = make_case(rng, "targets", shape=(4, 5))
    ce, ce_grad = sigmoid_focal_loss_and_gradient(logits, targets, focusing_parameter=0.0)
    half, half_grad = sigmoid_focal_loss_and_gradient(logits, targets, focusing_parameter=0.0, alpha=0.5)
    np.testing.assert_allclose(half, ce / 2, rtol=1e-14)
    np.testing.assert_allclose(half_grad, ce_grad / 2, rtol=1e-14)


@pytest.mark.parametrize("gamma", GAMMAS[1:])
def test_focal_loss_never_exceeds_cross_entropy(gamma):
    rng = np.random.default_rng(2)
    logits, targets = make_case(rng, "targets", shape=(8, 6), scale=6.0)
    pos, neg, _, _ = focal_terms(logits, gamma)
    pos_ce, neg_ce, _, _ = focal_terms(logits, 0.0)
    assert np.all(pos <= pos_ce) and np.all(neg <= neg_ce)
    assert np.any(pos < pos_ce) and np.any(neg < neg_ce)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_easy_examples_are_down_weighted_by_exactly_one_minus_pt_to_gamma(gamma):
    logits = np.array([[-6.0, -1.0, 0.0, 1.0, 6.0]])
    p = 1 / (1 + np.exp(-logits))
    pos, neg, _, _ = focal_terms(logits, gamma)
    pos_ce, neg_ce, _, _ = focal_terms(logits, 0.0)
    # For a positive p_t = p; for a negative p_t = 1 − p.
    np.testing.assert_allclose(pos / pos_ce, (1 - p) ** gamma, rtol=1e-12)
    np.testing.assert_allclose(neg / neg_ce, p ** gamma, rtol=1e-12)


def test_alpha_one_zeroes_negatives_and_alpha_zero_zeroes_positives():
    rng = np.random.default_rng(4)
    logits, targets = make_case(rng, "targets", shape=(6, 4))
    _, grad_alpha1 = sigmoid_focal_loss_and_gradient(logits, targets, alpha=1.0)
    _, grad_alpha0 = sigmoid_focal_loss_and_gradient(logits, targets, alpha=0.0)
    assert np.all(grad_alpha1[targets == 0] == 0) and np.all(grad_alpha1[targets == 1] != 0)
    assert np.all(grad_alpha0[targets == 1] == 0) and np.all(grad_alpha0[targets == 0] != 0)
    only_positives = sigmoid_focal_loss_and_gradient(logits, targets, alpha=1.0, normalization="none")[0]
    pos, _, _, _ = focal_terms(logits, 2.0)
    np.testing.assert_allclose(only_positives, pos[targets == 1].sum(), rtol=1e-12)


@pytest.mark.parametrize("form", ["targets", "indices"])
def test_ignored_entries_give_zero_loss_and_zero_gradient(form):
    rng = np.random.default_rng(5)
    logits, labels = make_case(rng, form, shape=(4, 3, 5), ignore_label=-1)
    settings = {"ignore_label": -1, "normalization": "none"}
    loss, grad = loss_and_grad(logits, labels, settings)
    ignored = (labels == -1) if form == "targets" else np.broadcast_to(
        (labels == -1)[:, None, :], logits.shape)
    assert ignored.any() and (~ignored).any()
    assert np.all(grad[ignored] == 0)
    wild = logits.copy()
    wild[ignored] = rng.normal(scale=50, size=np.count_nonzero(ignored))
    assert loss_and_grad(wild, labels, settings)[0] == loss


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0, 2.0, 5.0])
def test_finite_loss_and_gradient_at_saturated_logits(dtype, gamma):
    logits = np.array([[-1e4, -200.0, -90.0, -17.0, 0.0, 17.0, 90.0, 200.0, 1e4]], dtype=dtype)
    for target in (0.0, 1.0, 0.5):
        targets = np.full(logits.shape, target, dtype=dtype)
        loss, grad = sigmoid_focal_loss_and_gradient(logits, targets, focusing_parameter=gamma)
        assert np.isfinite(loss) and np.all(np.isfinite(grad)), (target, loss, grad)
        # |dℓ/dx| ≤ 1 + γ·max(q·(−log q)) = 1 + γ/e.
        assert np.all(np.abs(grad) <= 1.0 + gamma / np.e + 1e-6)


def test_no_87_cap_wrong_side_saturated_loss_grows_linearly():
    # log(max(p, FLT_MIN)) caps the loss at 87.34; softplus keeps growing with |x|.
    logits = np.array([[-1e4, -200.0]], dtype=np.float32)
    pos, _, grad, _ = focal_terms(logits, 0.0)
    np.testing.assert_allclose(pos, [[1e4, 200.0]], rtol=1e-6)
    np.testing.assert_allclose(grad, [[-1.0, -1.0]], rtol=1e-6)


def test_cross_entropy_terms_are_stable_and_exact_softplus():
    """At γ = 0, ℓ⁻ = softplus(x) = log(1 + e^x) and ℓ⁺ = softplus(−x), exact at the extremes."""
    z = np.array([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4])
    pos, neg, _, _ = focal_terms(z, 0.0)
    np.testing.assert_allclose(neg[2:5], np.log1p(np.exp(z[2:5])), rtol=1e-15)
    np.testing.assert_allclose(pos[2:5], np.log1p(np.exp(-z[2:5])), rtol=1e-15)
    assert neg[0] == 0.0 and neg[-1] == 1e4
    assert pos[-1] == 0.0 and pos[0] == 1e4


def test_inputs_are_not_modified():
    rng = np.random.default_rng(6)
    logits, labels = make_case(rng, "indices", shape=(2, 3, 4), ignore_label=-1)
    before = logits.copy(), labels.copy()
    loss_and_grad(logits, labels, {"ignore_label": -1, "label_smoothing": 0.1})
    np.testing.assert_array_equal(logits, before[0])
    np.testing.assert_array_equal(labels, before[1])
