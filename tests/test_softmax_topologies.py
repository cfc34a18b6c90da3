"""SoftmaxFocalLossLayer in the net topologies where Caffe does not simply call forward then
backward on it, against a twin net with Caffe's C++ SoftmaxWithLoss in the same role (the
machinery and the reasons are test_topologies.py's): a monitor with loss_weight 0 or none,
propagate_down false, force_backward, logits straight from an Input, a TEST-phase net. At
focusing_parameter 0 with the default normalization (valid, SoftmaxWithLoss's default) the two
layers compute the same loss, so any difference is in how the layer plays along with Caffe."""
import caffe
import numpy as np
import pytest
from caffe_nets import load_net
from test_topologies import (
    GAUSS,
    UNDER_TEST,
    C,
    D,
    N,
    assert_untouched,
    compare,
    compare_runs,
    forward_backward,
    input_layer,
    loss_layer,
    loss_variants,
    sentinel,
    set_inputs,
    set_params,
)

H, W = 3, 4


def loss(kind, name, bottoms=("score", "label"), loss_weight=1, gamma=0, propagate_down=None,
         ignore_label=None):
    """A loss layer whose top is `name`: 'focal' (SoftmaxFocalLossLayer) or 'swl' (Caffe's
    SoftmaxWithLoss). loss_weight None: no loss_weight line at all."""
    if kind == "focal":
        ignore = "" if ignore_label is None else f", 'ignore_label': {ignore_label}"
        return loss_layer(name, "Python", bottoms, loss_weight, propagate_down,
                          f'python_param {{ module: "focal_loss_layer" '
                          f'layer: "SoftmaxFocalLossLayer" '
                          f'param_str: "{{\'focusing_parameter\': {gamma}{ignore}}}" }}')
    assert gamma == 0, "SoftmaxWithLoss is softmax focal loss at gamma 0 only"
    ignore = "" if ignore_label is None else f"loss_param {{ ignore_label: {ignore_label} }}"
    return loss_layer(name, "SoftmaxWithLoss", bottoms, loss_weight, propagate_down, ignore)


def focal(name, **kw):
    return loss("focal", name, **kw)


def swl(name, **kw):
    return loss("swl", name, **kw)


FC = (input_layer("x", (N, D)) + input_layer("label", (N,))
      + f'layer {{ name: "fc" type: "InnerProduct" bottom: "x" top: "score" '
        f'inner_product_param {{ num_output: {C} {GAUSS} }} }}\n')
# Dense: labels (N, H, W) of 0/1 classes (set_inputs), conv logits (N, C, H, W).
CONV = (input_layer("x", (N, 2, H, W)) + input_layer("label", (N, H, W))
        + f'layer {{ name: "conv" type: "Convolution" bottom: "x" top: "score" convolution_param '
          f'{{ num_output: {C} kernel_size: 3 pad: 1 {GAUSS} }} }}\n')
MAIN = swl("main")

TWIN_CASES = [
    pytest.param(FC + UNDER_TEST, focal("main"), swl("main"), id="main-loss-alone"),
    pytest.param(CONV + UNDER_TEST, focal("main", ignore_label=0), swl("main", ignore_label=0),
                 id="dense-main-loss-ignore_label"),
    pytest.param(FC + MAIN + UNDER_TEST, focal("mon", loss_weight=0), swl("mon", loss_weight=0),
                 id="monitor-lw0"),
    pytest.param(FC + UNDER_TEST + MAIN, focal("mon", loss_weight=0), swl("mon", loss_weight=0),
                 id="monitor-lw0-declared-before-main"),
    pytest.param(FC + MAIN + UNDER_TEST, focal("mon", loss_weight=None), swl("mon", loss_weight=0),
                 id="monitor-no-loss_weight-line"),
    pytest.param(CONV + MAIN + UNDER_TEST, focal("mon", loss_weight=0, gamma=2), "",
                 id="dense-monitor-lw0-gamma2-vs-no-monitor"),
    pytest.param(FC + MAIN + UNDER_TEST, focal("pd", propagate_down=(False, False)),
                 swl("pd", propagate_down=(False, False)), id="propagate_down-false"),
    pytest.param(FC + MAIN + UNDER_TEST, focal("pd", gamma=2, propagate_down=(False, False)), "",
                 id="propagate_down-false-gamma2-vs-no-layer"),
    pytest.param(FC + UNDER_TEST, focal("pd", propagate_down=(True, False)),
                 swl("pd", propagate_down=(True, False)), id="propagate_down-true-logits-false-labels"),
    pytest.param("force_backward: true\n" + FC + MAIN + UNDER_TEST, focal("mon", loss_weight=0),
                 swl("mon", loss_weight=0), id="force_backward-monitor-lw0"),
    pytest.param(FC + UNDER_TEST, focal("a") + focal("b", loss_weight=0.5),
                 swl("a") + swl("b", loss_weight=0.5), id="two-losses-lw1-and-lw0.5"),
]


@pytest.mark.parametrize("body, focal_part, twin_part", TWIN_CASES)
def test_weight_gradient_equals_the_softmax_with_loss_twin(request, body, focal_part, twin_part):
    role = request.node.callspec.id
    compare_runs(role, forward_backward(body.replace(UNDER_TEST, focal_part)),
                 forward_backward(body.replace(UNDER_TEST, twin_part)))


LOSS_VARIANTS = loss_variants(focal, swl, "SoftmaxWithLoss")


@pytest.mark.parametrize("layer", LOSS_VARIANTS)
def test_input_logits_diff_untouched_without_force_backward(request, layer):
    role = f"input-logits-no-force_backward/{request.node.callspec.id}"
    net = load_net(input_layer("score", (N, C)) + input_layer("label", (N,)) + layer)
    set_inputs(net)
    net.blobs["score"].data[...] = np.random.default_rng(2).normal(size=(N, C))
    net.blobs["score"].diff[...] = sentinel((N, C))
    net.blobs["label"].diff[...] = sentinel((N,))
    net.forward()
    net.backward()
    assert_untouched(role, "Input 'score' diff", net.blobs["score"].diff, sentinel((N, C)))
    assert_untouched(role, "Input 'label' diff", net.blobs["label"].diff, sentinel((N,)))


@pytest.mark.parametrize("layer", LOSS_VARIANTS)
def test_test_phase_forward_writes_no_diff_and_gives_the_twins_loss(request, layer):
    role = f"TEST-phase/{request.node.callspec.id}"
    outputs = {}
    for name, text in (("net", layer), ("twin", swl("loss"))):
        net = load_net(FC + text, phase=caffe.TEST)
        set_params(net)
        set_inputs(net)
        net.blobs["score"].diff[...] = sentinel((N, C))
        net.blobs["label"].diff[...] = sentinel((N,))
        outputs[name] = net.forward()["loss"].item()
        assert_untouched(role, f"{name}: 'score' diff", net.blobs["score"].diff, sentinel((N, C)))
        assert_untouched(role, f"{name}: 'label' diff", net.blobs["label"].diff, sentinel((N,)))
    assert outputs["twin"] > 0
    if "gamma2" not in role:
        compare(role, "TEST-phase loss", outputs["net"], outputs["twin"])
    else:
        assert 0 < outputs["net"] < outputs["twin"]


@pytest.mark.parametrize("propagate_down", [
    pytest.param(None, id="labels-need-no-gradient"),
    pytest.param((True, False), id="propagate_down-false"),
])
def test_backward_leaves_the_label_diff_alone_where_propagate_down_is_false(request,
                                                                            propagate_down):
    """The layer's backward runs (the logits feed learnable weights), but Caffe asks no gradient
    for the labels: their diff keeps the sentinel exactly."""
    role = f"propagate_down-labels/{request.node.callspec.id}"
    net = load_net(FC + focal("loss", gamma=2, propagate_down=propagate_down))
    set_params(net)
    set_inputs(net)
    net.blobs["label"].diff[...] = sentinel((N,))
    net.forward()
    net.backward()
    assert np.abs(net.params["fc"][0].diff).max() > 1e-3, f"[{role}] backward did not run"
    assert_untouched(role, "'label' diff", net.blobs["label"].diff, sentinel((N,)))
