"""docs/faster_rcnn.md's two blocks, SoftmaxFocalLossLayer in place of py-faster-rcnn's
`rpn_loss_cls` and `loss_cls`, in real caffe.Nets in py-faster-rcnn's shapes: at γ = 0 they are
its SoftmaxWithLoss blocks (loss and gradient, twin nets), at γ = 2 the numpy reference.

The blocks are read from the docs page, so the page shows what is tested. py-faster-rcnn's own
prototxts do not load in this Caffe (no ROIPooling; SSD's SmoothL1Loss takes 2–3 bottoms, not
py-faster-rcnn's 4), so the nets hold only the losses: the scores come from Parameter layers (the
gradient reaches their weights without force_backward), `rpn_cls_score` through py-faster-rcnn's
own Reshape layer, and the labels are drawn as its samplers draw them."""
import ast
import json
import os
import re

import caffe
import numpy as np
import pytest
from caffe_nets import REPO
from google.protobuf import text_format

from focal_loss_layer.params import parse_softmax_param_str
from focal_loss_layer.softmax_core import softmax_focal_loss_and_gradient

DOCS = os.path.join(REPO, "docs", "faster_rcnn.md")

# py-faster-rcnn's blocks as written in models/pascal_voc/VGG16/faster_rcnn_end2end/train.prototxt
# (rbgirshick/py-faster-rcnn 781a917b), lines 446-459 and 654-663.
SOFTMAX_WITH_LOSS_BLOCKS = '''
layer {
  name: "rpn_loss_cls"
  type: "SoftmaxWithLoss"
  bottom: "rpn_cls_score_reshape"
  bottom: "rpn_labels"
  propagate_down: 1
  propagate_down: 0
  top: "rpn_cls_loss"
  loss_weight: 1
  loss_param {
    ignore_label: -1
    normalize: true
  }
}
layer {
  name: "loss_cls"
  type: "SoftmaxWithLoss"
  bottom: "cls_score"
  bottom: "labels"
  propagate_down: 1
  propagate_down: 0
  top: "loss_cls"
  loss_weight: 1
}
'''

A = 9                   # anchors per position (3 scales × 3 ratios)
H, W = 38, 50           # VGG16's conv5_3 (stride 16) for a 600 × 800 image
RPN_BATCHSIZE = 256     # cfg.TRAIN.RPN_BATCHSIZE; at most half positive (RPN_FG_FRACTION 0.5)
ROIS, CLASSES = 128, 21  # cfg.TRAIN.BATCH_SIZE RoIs per image, 25 % foreground; VOC + background

# The body: scores as Parameter blobs, labels as inputs; the Reshape is py-faster-rcnn's own.
BODY = '''
layer {{ name: "rpn_cls_score" type: "Parameter" top: "rpn_cls_score"
        parameter_param {{ shape {{ dim: {n} dim: {a2} dim: {h} dim: {w} }} }} }}
layer {{
   bottom: "rpn_cls_score"
   top: "rpn_cls_score_reshape"
   name: "rpn_cls_score_reshape"
   type: "Reshape"
   reshape_param {{ shape {{ dim: 0 dim: 2 dim: -1 dim: 0 }} }}
}}
layer {{ name: "rpn_labels" type: "Input" top: "rpn_labels"
        input_param {{ shape {{ dim: {n} dim: 1 dim: {ah} dim: {w} }} }} }}
layer {{ name: "cls_score" type: "Parameter" top: "cls_score"
        parameter_param {{ shape {{ dim: {rois} dim: {classes} }} }} }}
layer {{ name: "labels" type: "Input" top: "labels" input_param {{ shape {{ dim: {rois} }} }} }}
'''


def docs_blocks():
    """{layer name: LayerParameter} of the Python layers in docs/faster_rcnn.md's code blocks."""
    with open(DOCS) as f:
        blocks = re.findall(r"```\n(.*?)```", f.read(), flags=re.S)
    layers = {}
    for block in blocks:
        if 'type: "Python"' in block:
            layer = caffe.proto.caffe_pb2.LayerParameter()
            text_format.Parse(block.strip()[len("layer"):].strip()[1:-1], layer)
            layers[layer.name] = layer
    return layers


def swl_blocks():
    """{layer name: LayerParameter} of py-faster-rcnn's SoftmaxWithLoss blocks."""
    net = caffe.proto.caffe_pb2.NetParameter()
    text_format.Parse(SOFTMAX_WITH_LOSS_BLOCKS, net)
    return {layer.name: layer for layer in net.layer}


def settings(layer):
    return ast.literal_eval(layer.python_param.param_str)


def focal_blocks(gamma):
    """The docs' two blocks as prototxt text, with focusing_parameter set to gamma."""
    text = ""
    for layer in docs_blocks().values():
        layer = type(layer).FromString(layer.SerializeToString())
        layer.python_param.param_str = json.dumps(dict(settings(layer), focusing_parameter=gamma))
        text += "layer {\n" + text_format.MessageToString(layer) + "}\n"
    return text


def load(tmp_path, loss_blocks, n):
    path = tmp_path / f"net{len(list(tmp_path.iterdir()))}.prototxt"
    path.write_text(BODY.format(n=n, a2=2 * A, h=H, w=W, ah=A * H, rois=ROIS, classes=CLASSES)
                    + loss_blocks)
    caffe.set_mode_cpu()
    return caffe.Net(str(path), caffe.TRAIN)


def rpn_labels(rng, positives_per_image):
    """(N, 1, A·H, W) as AnchorTargetLayer gives them: per image `positives` anchors 1, then
    RPN_BATCHSIZE − positives anchors 0, drawn among the anchors inside the image (here a random
    80 %), and −1 everywhere else."""
    labels = np.full((len(positives_per_image), A * H * W), -1, np.float32)
    for image, positives in enumerate(positives_per_image):
        assert positives <= RPN_BATCHSIZE // 2
        inside = np.flatnonzero(rng.random(A * H * W) < 0.8)
        sampled = rng.choice(inside, RPN_BATCHSIZE, replace=False)
        labels[image, sampled[:positives]] = 1
        labels[image, sampled[positives:]] = 0
    return labels.reshape(len(positives_per_image), 1, A * H, W)


def roi_labels(rng):
    """(R,) as ProposalTargetLayer gives them: the foreground RoIs first (classes 1..20), then
    the background ones (0)."""
    foreground = ROIS // 4
    return np.concatenate([rng.integers(1, CLASSES, foreground),
                           np.zeros(ROIS - foreground)]).astype(np.float32)


def inputs(seed, positives_per_image):
    rng = np.random.default_rng(seed)
    n = len(positives_per_image)
    return {"rpn_cls_score": rng.normal(scale=2.0, size=(n, 2 * A, H, W)).astype(np.float32),
            "cls_score": rng.normal(scale=2.0, size=(ROIS, CLASSES)).astype(np.float32),
            "rpn_labels": rpn_labels(rng, positives_per_image), "labels": roi_labels(rng)}


def run(net, blobs):
    """({top: loss}, {score: its gradient}) after one forward and backward."""
    for name in ("rpn_cls_score", "cls_score"):
        net.params[name][0].data[...] = blobs[name]
        net.params[name][0].diff[...] = 0
    losses = net.forward(rpn_labels=blobs["rpn_labels"], labels=blobs["labels"])
    net.backward()
    return ({top: value.item() for top, value in losses.items()},
            {name: net.params[name][0].diff.copy() for name in ("rpn_cls_score", "cls_score")})


def twin_runs(tmp_path, gamma, positives_per_image, seed=0):
    blobs = inputs(seed, positives_per_image)
    n = len(positives_per_image)
    return (blobs, run(load(tmp_path, focal_blocks(gamma), n), blobs),
            run(load(tmp_path, SOFTMAX_WITH_LOSS_BLOCKS, n), blobs))


SAMPLES = pytest.mark.parametrize("positives_per_image", [[128], [17], [64, 3]],
                                  ids=["half-positive", "few-positive", "two-images"])


def test_the_docs_blocks_keep_the_replaced_layers_wiring():
    ours, theirs = docs_blocks(), swl_blocks()
    assert sorted(ours) == sorted(theirs) == ["loss_cls", "rpn_loss_cls"]
    for name, layer in ours.items():
        old = theirs[name]
        assert (layer.type, layer.python_param.module, layer.python_param.layer) == (
            "Python", "focal_loss_layer", "SoftmaxFocalLossLayer")
        assert (list(layer.bottom), list(layer.top), list(layer.propagate_down),
                list(layer.loss_weight)) == (list(old.bottom), list(old.top),
                                             list(old.propagate_down), list(old.loss_weight))


def test_the_docs_blocks_move_loss_param_into_param_str():
    ours, theirs = docs_blocks(), swl_blocks()
    for name, layer in ours.items():
        params = parse_softmax_param_str(layer.python_param.param_str)
        old = theirs[name].loss_param
        assert params.ignore_label == (old.ignore_label if old.HasField("ignore_label") else None)
        # normalize: true, or no loss_param at all: VALID, in this Caffe and in caffe-fast-rcnn.
        assert params.normalization == "valid" and settings(layer)["normalization"] == "valid"
        assert params.focusing_parameter == 2


@SAMPLES
def test_at_gamma_0_the_rpn_block_is_softmax_with_loss(tmp_path, positives_per_image):
    _, (losses, grads), (swl_losses, swl_grads) = twin_runs(tmp_path, 0, positives_per_image)
    np.testing.assert_allclose(losses["rpn_cls_loss"], swl_losses["rpn_cls_loss"], rtol=2e-6)
    expected = swl_grads["rpn_cls_score"]
    np.testing.assert_allclose(grads["rpn_cls_score"], expected, rtol=1e-5,
                               atol=1e-7 * np.abs(expected).max())


def test_at_gamma_0_the_head_block_is_softmax_with_loss(tmp_path):
    _, (losses, grads), (swl_losses, swl_grads) = twin_runs(tmp_path, 0, [40])
    np.testing.assert_allclose(losses["loss_cls"], swl_losses["loss_cls"], rtol=2e-6)
    expected = swl_grads["cls_score"]
    np.testing.assert_allclose(grads["cls_score"], expected, rtol=1e-5,
                               atol=1e-7 * np.abs(expected).max())


@SAMPLES
def test_at_gamma_2_the_rpn_block_is_the_numpy_reference(tmp_path, positives_per_image):
    blobs, (losses, grads), _ = twin_runs(tmp_path, 2, positives_per_image)
    n = len(positives_per_image)
    logits = blobs["rpn_cls_score"].astype(np.float64).reshape(n, 2, A * H, W)
    loss, grad = softmax_focal_loss_and_gradient(logits, blobs["rpn_labels"], focusing_parameter=2,
                                                 ignore_label=-1, normalization="valid")
    np.testing.assert_allclose(losses["rpn_cls_loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(grads["rpn_cls_score"], grad.reshape(n, 2 * A, H, W), rtol=1e-4,
                               atol=1e-7)


def test_at_gamma_2_the_head_block_is_the_numpy_reference(tmp_path):
    blobs, (losses, grads), _ = twin_runs(tmp_path, 2, [40])
    loss, grad = softmax_focal_loss_and_gradient(
        blobs["cls_score"].astype(np.float64), blobs["labels"], focusing_parameter=2,
        normalization="valid")
    np.testing.assert_allclose(losses["loss_cls"], loss, rtol=1e-5)
    np.testing.assert_allclose(grads["cls_score"], grad, rtol=1e-4, atol=1e-7)


def test_at_gamma_2_the_rpn_loss_is_a_mean_over_the_sampled_anchors_only(tmp_path):
    # Unsampled anchors take no gradient, and the divisor is the 2 × 256 sampled anchors: the
    # per-anchor terms of the reference without normalization, summed over them, / 512.
    blobs, (losses, grads), _ = twin_runs(tmp_path, 2, [64, 3])
    unsampled = np.broadcast_to(blobs["rpn_labels"] == -1, (2, 2, A * H, W))
    assert not grads["rpn_cls_score"].reshape(2, 2, A * H, W)[unsampled].any()
    total, _ = softmax_focal_loss_and_gradient(
        blobs["rpn_cls_score"].astype(np.float64).reshape(2, 2, A * H, W), blobs["rpn_labels"],
        focusing_parameter=2, ignore_label=-1, normalization="none")
    np.testing.assert_allclose(losses["rpn_cls_loss"], total / (2 * RPN_BATCHSIZE), rtol=1e-5)
