"""The NetSpec helper writes a working FocalLossLayer: settings into param_str, Caffe's layer
fields (name, loss_weight, propagate_down, include, exclude) onto the layer."""
import json

import caffe
import numpy as np
import pytest
from caffe import layers as L
from caffe_nets import load_net
from naive_reference import naive_focal_loss

from focal_loss_layer.balances import class_balances, class_counts
from focal_loss_layer.errors import ParamError
from focal_loss_layer.netspec import sigmoid_focal_loss_layer


def spec_with_focal_loss(**settings):
    n = caffe.NetSpec()
    n.score = L.Input(shape=dict(dim=[4, 3]))
    n.label = L.Input(shape=dict(dim=[4]))
    n.loss = sigmoid_focal_loss_layer(n.score, n.label, **settings)
    return n.to_proto()


def test_netspec_helper_writes_the_python_layer_with_serialised_settings():
    proto = spec_with_focal_loss(focusing_parameter=1.5, alpha=0.25, class_balances={2: 3.0})
    layer = proto.layer[-1]
    assert layer.type == "Python" and list(layer.loss_weight) == [1.0]
    assert (layer.python_param.module, layer.python_param.layer) == ("focal_loss_layer", "FocalLossLayer")
    assert json.loads(layer.python_param.param_str) == {
        "focusing_parameter": 1.5, "alpha": 0.25, "class_balances": {"2": 3.0}}


def test_net_written_by_netspec_computes_the_focal_loss():
    net = load_net(str(spec_with_focal_loss(focusing_parameter=1.5, alpha=0.25,
                                            class_balances={2: 3.0})))
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 3))
    labels = np.array([0, 1, 2, 3], dtype=float)
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    loss = net.forward()["loss"].item()
    expected, _ = naive_focal_loss(logits.astype(np.float32), labels, gamma=1.5, alpha=0.25,
                                   class_balances=[1.0, 3.0, 1.0])
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_netspec_helper_checks_settings_when_called():
    with pytest.raises(ParamError, match="unknown param_str key 'gamma'"):
        spec_with_focal_loss(gamma=2)


def test_caffe_layer_fields_go_to_the_layer_and_settings_into_param_str():
    proto = spec_with_focal_loss(focusing_parameter=2, ignore_label=-1, name="focal_monitor",
                                 loss_weight=0, propagate_down=[False, False],
                                 include=dict(phase=caffe.TEST), exclude=dict(stage="deploy"))
    layer = proto.layer[-1]
    assert layer.name == "focal_monitor"
    assert list(layer.loss_weight) == [0.0]
    assert list(layer.propagate_down) == [False, False]
    assert [rule.phase for rule in layer.include] == [caffe.TEST]
    assert [list(rule.stage) for rule in layer.exclude] == [["deploy"]]
    assert json.loads(layer.python_param.param_str) == {"focusing_parameter": 2,
                                                        "ignore_label": -1}


def test_a_net_with_netspec_layer_fields_builds_and_skips_the_excluded_phase():
    n = caffe.NetSpec()
    n.score = L.Input(shape=dict(dim=[4, 3]))
    n.label = L.Input(shape=dict(dim=[4]))
    n.loss = sigmoid_focal_loss_layer(n.score, n.label, name="train_only", include=dict(phase=caffe.TRAIN))
    train, test = load_net(str(n.to_proto()), caffe.TRAIN), load_net(str(n.to_proto()), caffe.TEST)
    assert "train_only" in list(train._layer_names)
    assert "train_only" not in list(test._layer_names)


def test_loss_param_is_refused_with_the_keywords_to_use_instead():
    with pytest.raises(ParamError, match="loss_param is not allowed.*normalization=.*ignore_label="):
        spec_with_focal_loss(loss_param=dict(normalization=1))


def test_numpy_settings_are_written_as_numbers_and_the_net_computes_with_them():
    """class_balances(counts) is an ndarray, and alpha often a numpy scalar: both reach the layer
    as the values they hold."""
    labels = np.array([0, 1, 2, 3, 3, 3, 2, 0], dtype=np.float32)
    weights = class_balances(class_counts(labels), beta=0.9)
    assert isinstance(weights, np.ndarray) and len(weights) == 3
    n = caffe.NetSpec()
    n.score = L.Input(shape=dict(dim=[8, 3]))
    n.label = L.Input(shape=dict(dim=[8]))
    n.loss = sigmoid_focal_loss_layer(n.score, n.label, focusing_parameter=np.int64(2), alpha=np.float32(0.25),
                        class_balances=weights, ignore_label=np.int32(-1))
    proto = n.to_proto()
    assert json.loads(proto.layer[-1].python_param.param_str) == {
        "focusing_parameter": 2, "alpha": 0.25, "class_balances": weights.tolist(),
        "ignore_label": -1}
    net = load_net(str(proto))
    logits = np.random.default_rng(4).normal(size=(8, 3)).astype(np.float32)
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    expected, _ = naive_focal_loss(logits, labels, gamma=2.0, alpha=0.25, class_balances=weights,
                                   ignore_label=-1)
    np.testing.assert_allclose(net.forward()["loss"].item(), expected, rtol=1e-5)


def test_numpy_class_ids_and_mixed_key_types_are_written_as_string_ids():
    proto = spec_with_focal_loss(class_balances={np.int64(1): np.float64(0.5), "3": 2})
    assert json.loads(proto.layer[-1].python_param.param_str) == {
        "class_balances": {"1": 0.5, "3": 2}}


@pytest.mark.parametrize("balances, message", [
    ({1: 2.0, "1": 3.0}, r"class_balances gives class 1 two weights \(keys 1 and '1'\)"),
    ({np.str_("2"): 1.0, 2: 3.0}, r"class_balances gives class 2 two weights"),
    (np.array([1.0, np.nan, 1.0]), r"class_balances weight nan for class 2 is not allowed"),
])
def test_numpy_settings_are_checked_like_any_other(balances, message):
    with pytest.raises(ParamError, match=message):
        spec_with_focal_loss(class_balances=balances)
