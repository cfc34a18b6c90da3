"""Settings at and beyond float32's range, for both layers' fast paths: a γ or a class weight
over FLT_MAX is a ParamError naming the key and the limit; finite settings and finite logits
that overflow the loss or the gradient are an InputError naming that cause; and nothing else
ever comes out: no silent NaN or inf, no internal error."""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from focal_loss_layer.errors import InputError, ParamError
from focal_loss_layer.fast import FocalLossKernel
from focal_loss_layer.params import FLT_MAX, parse_param_str, parse_softmax_param_str
from focal_loss_layer.softmax_fast import SoftmaxFocalLossKernel

# layer: (parser, kernel, labels for logits (N, C, S))
LAYERS = {
    "sigmoid": (parse_param_str, FocalLossKernel,
                lambda rng, shape: (rng.random(shape) < 0.3).astype(np.float32)),
    "softmax": (parse_softmax_param_str, SoftmaxFocalLossKernel,
                lambda rng, shape: rng.integers(0, shape[1], (shape[0],) + shape[2:]).astype(np.float32)),
}


def run(layer, settings_, logits, labels, loss_weight=1.0):
    parse, kernel_type, _ = LAYERS[layer]
    kernel = kernel_type(parse(json.dumps(settings_)), logits.shape, labels.shape)
    loss = kernel.forward(logits, labels)
    grad = np.full(logits.shape, np.nan, np.float32)
    kernel.backward(loss_weight, grad)
    return loss, grad


@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("settings_, key", [
    ({"focusing_parameter": 3.5e38}, "focusing_parameter = 3.5e+38 is not allowed"),
    ({"focusing_parameter": 1e300}, "focusing_parameter = 1e+300 is not allowed"),
    ({"class_balances": [1.0, 1e39, 1.0]}, "class_balances weight 1e+39 for class"),
])
def test_a_setting_beyond_float32_is_a_param_error_naming_key_and_limit(layer, settings_, key):
    with pytest.raises(ParamError) as raised:
        LAYERS[layer][0](json.dumps(settings_))
    assert key in str(raised.value) and "3.402823e+38" in str(raised.value)


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_settings_at_the_limit_are_allowed_and_give_finite_results(layer):
    """γ = FLT_MAX: every (1−p)^γ and p^γ underflows to 0 but the gradient stays finite."""
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3, size=(2, 3, 4)).astype(np.float32)
    labels = LAYERS[layer][2](rng, logits.shape)
    loss, grad = run(layer, {"focusing_parameter": FLT_MAX}, logits, labels)
    assert np.isfinite(loss) and np.isfinite(grad).all()


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_huge_weight_times_a_large_loss_names_that_cause(layer):
    # every logit (sigmoid, target 0) or position (softmax, label 0 at −60) costs about 60
    logits = np.full((2, 3, 4), 60.0, np.float32)
    if layer == "softmax":
        logits[:, 0] = -60.0
    labels = np.zeros((2, 3, 4) if layer == "sigmoid" else (2, 4), np.float32)
    settings_ = {"class_balances": [1e37, 1e37, 1e37], "focusing_parameter": 0}
    with pytest.raises(InputError) as raised:
        run(layer, settings_, logits, labels)
    message = str(raised.value)
    for text in ("the loss overflows float32", "class_balances", "1e+37", "largest |logit| 60",
                 "lower the largest class_balances weight"):
        assert text in message, (text, message)


def test_the_sigmoid_gradient_never_exceeds_the_weight():
    """|dℓ±/dx| ≤ 1 for every γ (the (1−p)^γ factor shrinks what γ adds), so weights up to
    FLT_MAX keep the sigmoid gradient finite. (Logits within ±0.5 keep every loss term ≤ 1,
    so that the weight times it fits too.)"""
    rng = np.random.default_rng(1)
    logits = rng.uniform(-0.5, 0.5, size=(2, 3, 50)).astype(np.float32)
    labels = (rng.random(logits.shape) < 0.5).astype(np.float32)
    for gamma in (0.0, 0.5, 2.0, 10.0, 1e6, FLT_MAX):
        _, grad = run("sigmoid", {"class_balances": [FLT_MAX] * 3, "focusing_parameter": gamma,
                                  "normalization": "full"}, logits, labels)
        assert np.isfinite(grad).all() and np.abs(grad).max() <= FLT_MAX


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_huge_loss_weight_names_the_scaled_gradient(layer):
    logits = np.zeros((1, 3, 4), np.float32)
    labels = (np.ones((1, 3, 4)) if layer == "sigmoid" else np.zeros((1, 4))).astype(np.float32)
    settings_ = {"class_balances": [1e30, 1e30, 1e30], "normalization": "none"}
    with pytest.raises(InputError, match=r"the gradient \(of the summed loss, times loss_weight / "
                                         r"normalizer = 1e\+10\) overflows float32"):
        run(layer, settings_, logits, labels, loss_weight=1e10)


finite_logits = st.floats(-FLT_MAX, FLT_MAX, width=32)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=st.sampled_from(sorted(LAYERS)),
       gamma=st.one_of(st.sampled_from([0.0, 2.0, 2.5, FLT_MAX]), st.floats(0, FLT_MAX)),
       weight=st.one_of(st.sampled_from([1.0, 1e30, FLT_MAX]), st.floats(0, FLT_MAX)),
       logits=st.lists(finite_logits, min_size=6, max_size=6),
       loss_weight=st.sampled_from([1.0, 0.5, 1e20]), seed=st.integers(0, 3))
def test_finite_settings_and_logits_give_finite_results_or_the_overflow_error(
        layer, gamma, weight, logits, loss_weight, seed):
    logits = np.array(logits, np.float32).reshape(1, 3, 2)
    labels = LAYERS[layer][2](np.random.default_rng(seed), logits.shape)
    settings_ = {"focusing_parameter": gamma, "class_balances": [weight] * 3}
    try:
        loss, grad = run(layer, settings_, logits, labels, loss_weight)
    except InputError as error:
        assert "overflows float32" in str(error)
        return
    assert np.isfinite(loss) and np.isfinite(grad).all(), (loss, grad)


@pytest.mark.parametrize("gamma", [10.0, 1e5, 1e9, 1e20, 1e30])
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_large_gamma_gives_the_float64_loss_and_gradient(layer, gamma):
    """(1−p)^γ from −log(1−p) computed without cancellation: at p ≈ 1e-9, log Z − log R
    rounds to 0 or below and (1−p)^γ came out 1, or past 1 (negative and 1e27 losses)."""
    from focal_loss_layer.core import sigmoid_focal_loss_and_gradient
    from focal_loss_layer.softmax_core import softmax_focal_loss_and_gradient
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 30, (512, 4, 1)).astype(np.float32)
    labels = LAYERS[layer][2](rng, logits.shape)
    settings_ = {"focusing_parameter": gamma, "normalization": "none"}
    loss, grad = run(layer, settings_, logits, labels)
    x = logits.astype(np.float64)
    if layer == "sigmoid":
        ref_loss, ref_grad = sigmoid_focal_loss_and_gradient(x, labels.astype(np.float64),
                                                             focusing_parameter=gamma,
                                                             normalization="none")
    else:
        ref_loss, ref_grad = softmax_focal_loss_and_gradient(x, labels, focusing_parameter=gamma,
                                                             normalization="none")
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-4, atol=1e-30)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-6 * np.abs(ref_grad).max())
