"""Both layers in real caffe.Net on the logits a diverging net produces: every NaN or ±inf stops
forward with the same InputError (fast.check_finite's: count and first index), at any class,
any γ (0, integer, non-integer), at an ignored position or not, with or without spatial dims;
finite logits of any spread give the loss and gradient of a float64 reference."""
import numpy as np
import pytest
from caffe_nets import focal_layer, input_net, load_net

from focal_loss_layer.core import sigmoid_focal_loss_and_gradient
from focal_loss_layer.errors import InputError
from focal_loss_layer.fast import check_finite
from focal_loss_layer.labels import read_labels
from focal_loss_layer.softmax_core import softmax_focal_loss_and_gradient

LAYERS = ("FocalLossLayer", "SoftmaxFocalLossLayer")
GAMMAS = (0.0, 0.5, 1.5, 2.0)
FLT_MAX = float(np.finfo(np.float32).max)


def net_for(layer, settings, logits_shape):
    labels_shape = logits_shape[:1] + logits_shape[2:]
    return load_net(input_net(logits_shape, labels_shape, focal_layer(settings, layer=layer)))


def reference(layer, logits, labels, settings):
    """(loss, gradient) of the numpy core in float64 on the same float32 inputs."""
    x = logits.astype(np.float32).astype(np.float64)
    gamma, ignore = settings.get("focusing_parameter", 2.0), settings.get("ignore_label")
    if layer == "SoftmaxFocalLossLayer":
        return softmax_focal_loss_and_gradient(x, labels, focusing_parameter=gamma, ignore_label=ignore,
                                  normalization="none")
    read = read_labels(labels, x.shape, ignore)
    return sigmoid_focal_loss_and_gradient(x, read.targets, focusing_parameter=gamma, valid=read.valid,
                              normalization="none")


# Labels (N, *spatial) = (2, S): position 0 of sample 0 ignored (-1), position 0 of sample 1
# labelled 1 (the softmax's class 1; the sigmoid's class 0, its index labels being 1..C).
LABEL_CHANNEL = {"FocalLossLayer": 0, "SoftmaxFocalLossLayer": 1}
PLACES = ("the label's class", "another class", "an ignored position")


def bad_index(layer, place, shape):
    sample, channel = {"the label's class": (1, LABEL_CHANNEL[layer]),
                       "another class": (1, 2), "an ignored position": (0, 1)}[place]
    return (sample, channel) + (0,) * (len(shape) - 2)


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 2, 2)], ids=["NC", "NCHW"])
@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("layer", LAYERS)
def test_a_non_finite_logit_anywhere_stops_forward_with_the_count_and_first_index(
        layer, gamma, bad, place, shape):
    settings = {"focusing_parameter": gamma, "ignore_label": -1}
    net = net_for(layer, settings, shape)
    logits = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    labels = np.zeros(shape[:1] + shape[2:], np.float32)
    labels.reshape(2, -1)[:, 0] = [-1, 1]
    logits[bad_index(layer, place, shape)] = bad
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    with pytest.raises(InputError) as expected:
        check_finite(logits)
    with pytest.raises(InputError) as raised:
        net.forward()
    assert str(raised.value) == str(expected.value)


@pytest.mark.parametrize("layer", LAYERS)
def test_several_non_finite_logits_are_counted(layer):
    shape = (2, 3, 5)
    net = net_for(layer, {"focusing_parameter": 0, "ignore_label": -1}, shape)
    logits = np.zeros(shape, np.float32)
    logits[0, 2, 3], logits[1, 0, 1], logits[1, 2, 4] = -np.inf, np.nan, np.inf
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = 1
    with pytest.raises(InputError, match=r"holds 3 non-finite value\(s\) \(NaN or ±inf\); the "
                                         r"first is -inf at index \(0, 2, 3\)"):
        net.forward()


# Rows of finite logits spread over more than FLT_MAX: x_k − m overflows float32 to −inf.
SPREAD = [[2e38, -2e38, 0.0], [3.4e38, -3.4e38, -3.4e38], [-3e38, 1.0, 3e38],
          [1e38, 1e38, -3e38], [-FLT_MAX, FLT_MAX, 0.0]]


@pytest.mark.parametrize("shape", ["NC", "NCS"])
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("layer", LAYERS)
def test_finite_logits_of_any_spread_give_the_float64_loss_and_gradient(layer, gamma, shape):
    """Labels at the maximum (the softmax's exact loss is 0) and at the far end: the gradient
    is the reference's, finite. Where the reference's loss is beyond float32 (a term −log p
    above FLT_MAX, the label FLT_MAX below the maximum), forward stops with the overflow error
    instead of giving an inf loss (the next test keeps those rows within range)."""
    rows = np.array(SPREAD, np.float32)
    top = np.argmax(rows, axis=1)
    labels = np.concatenate([top, (top + 1) % 3]).astype(np.float32)
    if layer == "FocalLossLayer":
        labels = labels + 1             # index labels 1..C: the same classes positive
    logits = np.concatenate([rows, rows])
    if shape == "NCS":                  # the same positions along a spatial axis
        logits, labels = logits.T[None].copy(), labels[None]
    settings = {"focusing_parameter": gamma, "normalization": "none"}
    ref_loss, ref_grad = reference(layer, logits, labels, settings)
    net = net_for(layer, settings, logits.shape)
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    if ref_loss > FLT_MAX:
        with pytest.raises(InputError, match="the loss overflows float32"):
            net.forward()
        return
    loss = net.forward()["loss"].item()
    net.backward()
    grad = net.blobs["score"].diff
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, ref_loss, rtol=2e-6)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("layer", LAYERS)
def test_logits_near_flt_max_within_float32_give_the_float64_loss_and_gradient(layer, gamma):
    """Labels at each row's maximum: every term fits float32, so loss and gradient are the
    float64 reference's, however far apart the logits."""
    logits = np.array(SPREAD, np.float32)
    labels = np.argmax(logits, axis=1).astype(np.float32)
    if layer == "FocalLossLayer":
        labels = labels + 1
    settings = {"focusing_parameter": gamma, "normalization": "none"}
    ref_loss, ref_grad = reference(layer, logits, labels, settings)
    assert ref_loss <= FLT_MAX
    net = net_for(layer, settings, logits.shape)
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    loss = net.forward()["loss"].item()
    net.backward()
    np.testing.assert_allclose(net.blobs["score"].diff, ref_grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, ref_loss, rtol=2e-6)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_the_softmax_loss_of_logits_spread_past_flt_max_with_the_label_at_the_top_is_zero(gamma):
    """The issue's case: [2e38, −2e38, 0], label 0: p = 1 exactly, loss 0 and gradient 0."""
    net = net_for("SoftmaxFocalLossLayer", {"focusing_parameter": gamma}, (1, 3))
    net.blobs["score"].data[...] = [[2e38, -2e38, 0.0]]
    net.blobs["label"].data[...] = 0
    assert net.forward()["loss"].item() == 0
    net.backward()
    assert np.all(net.blobs["score"].diff == 0)
