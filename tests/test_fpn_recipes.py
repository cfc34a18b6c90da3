"""docs/retinanet.md's two FPN recipes (prototxt/retinanet/): one layer per level sharing a normalizer
counted by Caffe's own layers, and the levels concatenated into one layer. Both give the same
loss and gradients, equal to the numpy core over all anchors divided by max(#positives, 1).

The reference spells out Detectron's anchor layout itself (logit channel a·C + c for anchor a,
class c + 1), rather than asking the package's own label reader, so that a wrong channel order
in the package cannot agree with itself."""
import os

import caffe
import numpy as np
import pytest
from caffe_nets import REPO

from focal_loss_layer.core import sigmoid_focal_loss_and_gradient

A, C = 9, 4
LEVELS = {"p3": (8, 8), "p4": (4, 4)}


def load(name):
    caffe.set_mode_cpu()
    return caffe.Net(os.path.join(REPO, "prototxt", "retinanet", name), caffe.TRAIN)


def inputs(seed, positive_rate):
    rng = np.random.default_rng(seed)
    blobs = {}
    for level, (h, w) in LEVELS.items():
        blobs[f"{level}_feat"] = rng.normal(scale=100.0, size=(2, 16, h, w)).astype(np.float32)
        labels = rng.integers(1, C + 1, size=(2, A, h, w)).astype(np.float32)
        labels[rng.random(labels.shape) > positive_rate] = 0
        labels[rng.random(labels.shape) < 0.1] = -1
        blobs[f"{level}_label"] = labels
    return blobs


def run(net, blobs):
    """(loss, {level_cls: logits}, {level_cls: diff}, shared weight diff) after forward+backward."""
    for name, value in blobs.items():
        net.blobs[name].data[...] = value
    out = net.forward()
    net.backward()
    loss = sum(v.item() for v in out.values())
    names = [f"{level}_cls" for level in LEVELS]
    return (loss, {n: net.blobs[n].data.copy() for n in names},
            {n: net.blobs[n].diff.copy() for n in names}, net.params["p3_cls"][0].diff.copy())


def anchor_targets(labels):
    """Per-logit targets and valid mask, shape (N, A·C, H, W), from labels (N, A, H, W) with −1
    ignored, 0 background, 1..C: logit channel a·C + c is anchor a's score for class c + 1."""
    n, _, h, w = labels.shape
    targets = np.zeros((n, A * C, h, w))
    valid = np.zeros((n, A * C, h, w), dtype=bool)
    for a in range(A):
        for c in range(C):
            targets[:, a * C + c] = labels[:, a] == c + 1
            valid[:, a * C + c] = labels[:, a] != -1
    return targets, valid


def reference(logits_by_level, blobs):
    """Σ over levels of the un-normalised focal loss (core, float64, per logit) / max(#positives,
    1)."""
    total, grads, positives = 0.0, {}, 0
    for level in LEVELS:
        logits, labels = logits_by_level[f"{level}_cls"], blobs[f"{level}_label"]
        targets, valid = anchor_targets(labels)
        loss, grad = sigmoid_focal_loss_and_gradient(logits.astype(np.float64), targets, focusing_parameter=2.0,
                                        alpha=0.25, valid=valid, normalization="none")
        total += loss
        grads[f"{level}_cls"] = grad
        positives += np.count_nonzero(labels > 0)
    divisor = max(positives, 1)
    return total / divisor, {k: g / divisor for k, g in grads.items()}, positives


@pytest.mark.parametrize("positive_rate", [0.05, 0.0])
def test_both_recipes_equal_the_core_over_all_levels(positive_rate):
    blobs = inputs(0, positive_rate)
    shared, concat = load("fpn_shared_normalizer.prototxt"), load("fpn_concat.prototxt")
    for name in ("p3_cls", "p4_cls"):          # the same subnet weights in both nets
        for k, param in enumerate(shared.params[name]):
            concat.params[name][k].data[...] = param.data
    weight_diffs = []
    for net in (shared, concat):
        loss, logits, grads, weight_diff = run(net, blobs)
        expected_loss, expected_grads, positives = reference(logits, blobs)
        assert np.abs(logits["p3_cls"]).max() > 1      # logits far from the prior bias alone
        np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
        for name, grad in grads.items():
            np.testing.assert_allclose(grad, expected_grads[name], rtol=1e-4, atol=1e-8)
        weight_diffs.append(weight_diff)
    assert (positives == 0) == (positive_rate == 0)
    assert shared.blobs["fg_num"].data.item() == positives
    np.testing.assert_allclose(weight_diffs[0], weight_diffs[1], rtol=1e-4, atol=1e-6)
