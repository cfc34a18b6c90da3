"""An in-place layer on a view of the logits, declared after the loss, rewrites them between the
loss's forward and its backward. Caffe's C++ losses keep their forward's results and train as if
nothing happened; both layers keep their gradient from forward and must do the same: the weight
gradient equals the C++ twin's (SigmoidCrossEntropyLoss, SoftmaxWithLoss) in the same net at
γ = 0, and at γ = 2 it is the numpy core's gradient of the logits forward saw. In real caffe.Net,
in TRAIN nets and in TEST nets run backward (force_backward, as for saliency maps)."""
import json

import caffe
import numpy as np
import pytest
from caffe_nets import load_net

from focal_loss_layer.core import sigmoid_focal_loss_and_gradient
from focal_loss_layer.labels import read_labels
from focal_loss_layer.softmax_core import softmax_focal_loss_and_gradient

N, D, C = 4, 5, 3
# layer: (C++ twin, labels' shape, numpy core (logits, labels, γ) -> (loss, gradient))
LAYERS = {
    "FocalLossLayer": ("SigmoidCrossEntropyLoss", (N, C), lambda x, t, gamma:
                       sigmoid_focal_loss_and_gradient(x, read_labels(t, x.shape).targets,
                                                       focusing_parameter=gamma)),
    "SoftmaxFocalLossLayer": ("SoftmaxWithLoss", (N,), lambda x, t, gamma:
                              softmax_focal_loss_and_gradient(x, t, focusing_parameter=gamma)),
}
AFTER_LOSS = {
    "relu": ('layer { name: "flat" type: "Flatten" bottom: "score" top: "flat" }\n'
             'layer { name: "relu" type: "ReLU" bottom: "flat" top: "flat" }\n'),
    # every sign flipped
    "negate": ('layer { name: "flat" type: "Flatten" bottom: "score" top: "flat" }\n'
               'layer { name: "negate" type: "Power" bottom: "flat" top: "flat" '
               'power_param { scale: -1 } }\n'),
    "relu not in place": ('layer { name: "flat" type: "Flatten" bottom: "score" top: "flat" }\n'
                          'layer { name: "relu" type: "ReLU" bottom: "flat" top: "flat_relu" }\n'),
    "none": "",
}


def three_layer_net(layer, after_loss, gamma=0, twin=False, phase=None):
    """data → InnerProduct → score → loss (the layer, or its C++ twin), then `after_loss`."""
    twin_type, labels_shape, _ = LAYERS[layer]
    if twin:
        loss = (f'layer {{ name: "loss" type: "{twin_type}" bottom: "score" bottom: "label" '
                'top: "loss" loss_weight: 1 }\n')
    else:
        param_str = json.dumps({"focusing_parameter": gamma}).replace('"', '\\"')
        loss = (f'layer {{ name: "loss" type: "Python" bottom: "score" bottom: "label" '
                f'top: "loss" python_param {{ module: "focal_loss_layer" layer: "{layer}" '
                f'param_str: "{param_str}" }} loss_weight: 1 }}\n')

    def dims(shape):
        return " ".join(f"dim: {d}" for d in shape)
    return load_net(
        ("force_backward: true\n" if phase == caffe.TEST else "")
        + f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims((N, D))} }} }} }}\n'
        f'layer {{ name: "label" type: "Input" top: "label" input_param {{ shape {{ {dims(labels_shape)} }} }} }}\n'
        'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "score"\n'
        f'  inner_product_param {{ num_output: {C} weight_filler {{ type: "gaussian" std: 1 }} }} }}\n'
        + loss + after_loss, phase)


def run(net, layer, seed=0):
    """Filled inputs, forward, backward: (the logits forward saw, labels, the weight gradient,
    the loss)."""
    labels_shape = LAYERS[layer][1]
    rng = np.random.default_rng(seed)
    net.params["ip"][0].data[...] = rng.normal(size=(C, D))
    net.params["ip"][1].data[...] = 0
    net.blobs["data"].data[...] = rng.normal(size=(N, D))
    net.blobs["label"].data[...] = (rng.random(labels_shape) < 0.4 if len(labels_shape) == 2
                                    else rng.integers(0, C, labels_shape))
    net.clear_param_diffs()
    loss = net.forward()["loss"].item()
    seen = net.blobs["data"].data.astype(np.float64) @ net.params["ip"][0].data.T.astype(np.float64)
    net.backward()
    return seen, net.blobs["label"].data.copy(), net.params["ip"][0].diff.copy(), loss


PHASES = [pytest.param(caffe.TRAIN, id="TRAIN"), pytest.param(caffe.TEST, id="TEST force_backward")]


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("after_loss", sorted(AFTER_LOSS))
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_the_weight_gradient_equals_the_caffe_twins_in_the_same_net(layer, after_loss, phase):
    """(Under force_backward the layers after the loss run their backward too, and an in-place
    Power adds its own to the score's: the twin's net gets the same.)"""
    net = three_layer_net(layer, AFTER_LOSS[after_loss], phase=phase)
    seen, _, ours, loss = run(net, layer)
    if after_loss in ("relu", "negate"):      # not vacuous: the logits were rewritten
        assert np.abs(net.blobs["score"].data - seen).max() > 1e-3
    _, _, theirs, twin_loss = run(
        three_layer_net(layer, AFTER_LOSS[after_loss], twin=True, phase=phase), layer)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, twin_loss, rtol=1e-5)


@pytest.mark.parametrize("after_loss", ["relu", "negate"])
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_at_gamma_2_the_gradient_is_that_of_the_logits_forward_saw(layer, after_loss):
    gamma = 2.0
    seen, labels, weight_grad, loss = run(
        three_layer_net(layer, AFTER_LOSS[after_loss], gamma=gamma), layer)
    ref_loss, ref_grad = LAYERS[layer][2](seen, labels, gamma)
    data = np.random.default_rng(0)
    data.normal(size=(C, D))
    inputs = data.normal(size=(N, D))             # run()'s data, drawn in the same order
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(weight_grad, ref_grad.T @ inputs, rtol=1e-4, atol=1e-6)
