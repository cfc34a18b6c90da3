"""The NetSpec helpers write a working layer, for each row of cases.LAYERS
(sigmoid_focal_loss_layer, softmax_focal_loss_layer): settings into param_str (checked when
called, against the layer's keys), Caffe's layer fields (name, loss_weight, propagate_down,
include, exclude) onto the layer, and a net that computes the loss."""
import json

import caffe
import numpy as np
import pytest
from caffe import layers as L
from caffe_nets import load_net
from cases import LAYERS, SIGMOID, SOFTMAX, layer_id

from focal_loss_layer import netspec
from focal_loss_layer.balances import class_balances, class_counts
from focal_loss_layer.errors import ParamError


def spec_with(layer, logits_shape=(4, 3), **settings):
    """A NetSpec proto: Input score and label (one per position), and the layer's helper."""
    n = caffe.NetSpec()
    n.score = L.Input(shape=dict(dim=list(logits_shape)))
    n.label = L.Input(shape=dict(dim=list(layer.labels_shape(logits_shape))))
    n.loss = getattr(netspec, layer.netspec)(n.score, n.label, **settings)
    return n.to_proto()


@pytest.mark.parametrize("layer, settings, written", [
    (SIGMOID, dict(focusing_parameter=1.5, alpha=0.25, class_balances={2: 3.0}),
     {"focusing_parameter": 1.5, "alpha": 0.25, "class_balances": {"2": 3.0}}),
    (SOFTMAX, dict(focusing_parameter=1.5, class_balances={0: 0.5}, ignore_label=255),
     {"focusing_parameter": 1.5, "class_balances": {"0": 0.5}, "ignore_label": 255}),
], ids=layer_id)
def test_helper_writes_the_python_layer_with_serialised_settings(layer, settings, written):
    layer_proto = spec_with(layer, **settings).layer[-1]
    assert layer_proto.type == "Python" and list(layer_proto.loss_weight) == [1.0]
    assert (layer_proto.python_param.module, layer_proto.python_param.layer) == (
        "focal_loss_layer", layer.name)
    assert json.loads(layer_proto.python_param.param_str) == written


@pytest.mark.parametrize("fields, phases", [
    (dict(name="focal_monitor", loss_weight=0, propagate_down=[False, False],
          include=dict(phase=caffe.TEST), exclude=dict(stage="deploy")), [caffe.TEST]),
    (dict(name="seg_loss", loss_weight=2, include=dict(phase=caffe.TRAIN)), [caffe.TRAIN]),
])
@pytest.mark.parametrize("layer", LAYERS, ids=layer_id)
def test_caffe_layer_fields_go_to_the_layer_and_settings_into_param_str(layer, fields, phases):
    proto = spec_with(layer, focusing_parameter=2, ignore_label=-1, **fields)
    layer_proto = proto.layer[-1]
    assert layer_proto.name == fields["name"]
    assert list(layer_proto.loss_weight) == [float(fields["loss_weight"])]
    assert list(layer_proto.propagate_down) == fields.get("propagate_down", [])
    assert [rule.phase for rule in layer_proto.include] == phases
    assert [list(rule.stage) for rule in layer_proto.exclude] == (
        [[fields["exclude"]["stage"]]] if "exclude" in fields else [])
    assert json.loads(layer_proto.python_param.param_str) == {"focusing_parameter": 2,
                                                              "ignore_label": -1}


@pytest.mark.parametrize("layer, shape, labels", [
    (SIGMOID, (4, 3), [0, 1, 2, 3]),
    (SOFTMAX, (4, 3, 2), [[0, 1], [2, 2], [1, 0], [2, 1]]),
], ids=layer_id)
def test_net_written_by_the_helper_computes_the_loss(layer, shape, labels):
    settings = dict(focusing_parameter=1.5, alpha=0.25, class_balances={2: 3.0})
    net = load_net(str(spec_with(layer, shape, **settings)))
    logits = np.random.default_rng(0).normal(size=shape)
    labels = np.array(labels, dtype=float)
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    expected, _ = layer.naive(logits.astype(np.float32), labels, settings)
    np.testing.assert_allclose(net.forward()["loss"].item(), expected, rtol=1e-5)


@pytest.mark.parametrize("layer", LAYERS, ids=layer_id)
def test_a_net_with_netspec_layer_fields_builds_and_skips_the_excluded_phase(layer):
    n = caffe.NetSpec()
    n.score = L.Input(shape=dict(dim=[4, 3]))
    n.label = L.Input(shape=dict(dim=[4]))
    n.loss = getattr(netspec, layer.netspec)(n.score, n.label, name="train_only",
                                             include=dict(phase=caffe.TRAIN))
    train, test = load_net(str(n.to_proto()), caffe.TRAIN), load_net(str(n.to_proto()), caffe.TEST)
    assert "train_only" in list(train._layer_names)
    assert "train_only" not in list(test._layer_names)


@pytest.mark.parametrize("layer, settings, message", [
    (SIGMOID, {"gamma": 2}, "unknown param_str key 'gamma'"),
    (SIGMOID, {"loss_param": dict(normalization=1)},
     "loss_param is not allowed.*normalization=.*ignore_label="),
    # numpy settings are checked like any other
    (SIGMOID, {"class_balances": {1: 2.0, "1": 3.0}},
     r"class_balances gives class 1 two weights \(keys 1 and '1'\)"),
    (SIGMOID, {"class_balances": {np.str_("2"): 1.0, 2: 3.0}}, r"class_balances gives class 2 two weights"),
    (SIGMOID, {"class_balances": np.array([1.0, np.nan, 1.0])},
     r"class_balances weight nan for class 2 is not allowed"),
    (SOFTMAX, {"gamma": 2}, "unknown param_str key 'gamma'"),
    (SOFTMAX, {"num_anchors": 9}, "'num_anchors' is sigmoid-only"),
    (SOFTMAX, {"normalization": "positives"}, "'positives' is sigmoid-only"),
    (SOFTMAX, {"loss_param": {"ignore_label": 255}}, "loss_param is not allowed"),
], ids=layer_id)
def test_helper_checks_settings_when_called(layer, settings, message):
    with pytest.raises(ParamError, match=message):
        spec_with(layer, **settings)


@pytest.mark.parametrize("layer", LAYERS, ids=layer_id)
def test_numpy_class_ids_and_mixed_key_types_are_written_as_string_ids(layer):
    proto = spec_with(layer, class_balances={np.int64(1): np.float64(0.5), "3": 2})
    assert json.loads(proto.layer[-1].python_param.param_str) == {
        "class_balances": {"1": 0.5, "3": 2}}


@pytest.mark.parametrize("layer, labels, balances, weights, settings", [
    (SIGMOID, [0, 1, 2, 3, 3, 3, 2, 0], lambda labels: class_balances(class_counts(labels), beta=0.9),
     None,
     dict(focusing_parameter=np.int64(2), alpha=np.float32(0.25), ignore_label=np.int32(-1))),
    # class ids 0..C−1 counted with layer="softmax"
    (SOFTMAX, [[0, 1], [2, 2], [1, 0], [2, 2]],
     lambda labels: class_balances(class_counts(labels, layer="softmax"), "inverse_frequency",
                                   layer="softmax"),
     np.array([1 / 2, 1 / 2, 1 / 4]) / (5 / 12),
     dict(focusing_parameter=np.float64(1.5), alpha=np.float32(0.25))),
], ids=layer_id)
def test_numpy_settings_are_written_as_numbers_and_the_net_computes_with_them(
        layer, labels, balances, weights, settings):
    """The balances helpers' ndarray and numpy scalars (alpha often is one) reach the layer as the
    values they hold, through a real NetSpec and caffe.Net."""
    labels = np.array(labels, dtype=np.float32)
    found = balances(labels)
    assert isinstance(found, np.ndarray) and len(found) == 3
    if weights is not None:
        np.testing.assert_allclose(found, weights, rtol=1e-15)
    proto = spec_with(layer, (len(labels), 3) + labels.shape[1:], class_balances=found, **settings)
    written = {key: value.item() for key, value in settings.items()}
    written["class_balances"] = found.tolist()
    assert json.loads(proto.layer[-1].python_param.param_str) == written
    net = load_net(str(proto))
    logits = np.random.default_rng(4).normal(size=(len(labels), 3) + labels.shape[1:]).astype(np.float32)
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    expected, _ = layer.naive(logits, labels, written)
    np.testing.assert_allclose(net.forward()["loss"].item(), expected, rtol=1e-5)
