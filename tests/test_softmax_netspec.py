"""The NetSpec helper for SoftmaxFocalLossLayer: settings into param_str (checked when called,
against the softmax keys), Caffe's layer fields onto the layer, and a net that computes the loss."""
import json

import caffe
import numpy as np
import pytest
from caffe import layers as L
from caffe_nets import load_net
from naive_reference import naive_softmax_focal_loss

from focal_loss_layer.balances import class_balances, class_counts
from focal_loss_layer.errors import ParamError
from focal_loss_layer.netspec import softmax_focal_loss_layer


def spec_with_softmax_focal_loss(**settings):
    n = caffe.NetSpec()
    n.score = L.Input(shape=dict(dim=[4, 3, 2]))
    n.label = L.Input(shape=dict(dim=[4, 2]))
    n.loss = softmax_focal_loss_layer(n.score, n.label, **settings)
    return n.to_proto()


def test_helper_writes_the_python_layer_and_caffe_fields():
    proto = spec_with_softmax_focal_loss(focusing_parameter=1.5, class_balances={0: 0.5},
                                         ignore_label=255, name="seg_loss", loss_weight=2,
                                         include=dict(phase=caffe.TRAIN))
    layer = proto.layer[-1]
    assert layer.type == "Python" and layer.name == "seg_loss" and list(layer.loss_weight) == [2.0]
    assert (layer.python_param.module, layer.python_param.layer) == (
        "focal_loss_layer", "SoftmaxFocalLossLayer")
    assert [rule.phase for rule in layer.include] == [caffe.TRAIN]
    assert json.loads(layer.python_param.param_str) == {
        "focusing_parameter": 1.5, "class_balances": {"0": 0.5}, "ignore_label": 255}


def test_net_written_by_the_helper_computes_the_softmax_focal_loss():
    net = load_net(str(spec_with_softmax_focal_loss(focusing_parameter=1.5, alpha=0.25,
                                                    class_balances={2: 3.0})))
    logits = np.random.default_rng(0).normal(size=(4, 3, 2))
    labels = np.array([[0, 1], [2, 2], [1, 0], [2, 1]], dtype=float)
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    expected, _ = naive_softmax_focal_loss(logits.astype(np.float32), labels,
                                           focusing_parameter=1.5, alpha=0.25,
                                           class_balances=[1.0, 1.0, 3.0])
    np.testing.assert_allclose(net.forward()["loss"].item(), expected, rtol=1e-5)


@pytest.mark.parametrize("settings, message", [
    ({"gamma": 2}, "unknown param_str key 'gamma'"),
    ({"num_anchors": 9}, "'num_anchors' is sigmoid-only"),
    ({"normalization": "positives"}, "'positives' is sigmoid-only"),
    ({"loss_param": {"ignore_label": 255}}, "loss_param is not allowed"),
])
def test_helper_checks_settings_when_called(settings, message):
    with pytest.raises(ParamError, match=message):
        spec_with_softmax_focal_loss(**settings)


def test_numpy_settings_reach_the_layer_as_the_values_they_hold():
    """The balances helpers' ndarray (class ids 0..C−1 counted with layer="softmax") and numpy
    scalars, through a real NetSpec and caffe.Net."""
    labels = np.array([[0, 1], [2, 2], [1, 0], [2, 2]], dtype=np.float32)
    weights = class_balances(class_counts(labels, layer="softmax"), "inverse_frequency",
                             layer="softmax")
    np.testing.assert_allclose(weights, np.array([1 / 2, 1 / 2, 1 / 4]) / (5 / 12), rtol=1e-15)
    proto = spec_with_softmax_focal_loss(focusing_parameter=np.float64(1.5),
                                         alpha=np.float32(0.25), class_balances=weights)
    assert json.loads(proto.layer[-1].python_param.param_str) == {
        "focusing_parameter": 1.5, "alpha": 0.25, "class_balances": weights.tolist()}
    net = load_net(str(proto))
    logits = np.random.default_rng(5).normal(size=(4, 3, 2)).astype(np.float32)
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    expected, _ = naive_softmax_focal_loss(logits, labels, focusing_parameter=1.5, alpha=0.25,
                                           class_balances=weights)
    np.testing.assert_allclose(net.forward()["loss"].item(), expected, rtol=1e-5)
