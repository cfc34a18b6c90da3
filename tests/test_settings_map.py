"""The settings map of docs/porting.md: each framework's focal loss, transcribed here in float64 numpy from
its published formula (no framework installed), equals this layer under the mapped param_str.
Where a mapping is exact only for hard targets (torchvision, Keras with label smoothing), the test
says so and shows the difference."""
import json

import numpy as np
import pytest

from focal_loss_layer.fast import FocalLossKernel
from focal_loss_layer.params import parse_param_str


def layer(logits, labels, settings, normalizer=None, loss_weight=1.0):
    """(loss·loss_weight, gradient) of FocalLossLayer's fast path."""
    params = parse_param_str(json.dumps(settings))
    kernel = FocalLossKernel(params, logits.shape, labels.shape)
    loss = kernel.forward(logits.astype(np.float32), labels.astype(np.float32), normalizer)
    grad = np.empty(logits.shape, np.float32)
    kernel.backward(loss_weight, grad)
    return loss * loss_weight, grad


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def bce_with_logits(x, t):
    return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))


def numeric_gradient(loss_of, x, step=1e-6):
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        grad[index] = (loss_of(plus) - loss_of(minus)) / (2 * step)
    return grad


def detectron_sigmoid_focal_loss(logits, labels, fg_num, gamma, alpha, scale, num_classes):
    """Detectron's SigmoidFocalLoss op (and its ports in maskrcnn-benchmark, mmcv, Paddle):
    logits (N, A·C, H, W), labels (N, A, H, W) in {−1 ignore, 0 background, 1..C};
    loss = scale · Σ [−c1·zp·(1−p)^γ·log p − c2·zn·p^γ·log(1−p)], zp = α/Np, zn = (1−α)/Np,
    Np = max(fg_num, 1); c1 = [t = d+1], c2 = [t ≠ −1 and t ≠ d+1] for channel a·C + d."""
    n, ac, h, w = logits.shape
    a = ac // num_classes
    t = np.repeat(labels.reshape(n, a, 1, h, w), num_classes, axis=2).reshape(logits.shape)
    d = np.tile(np.arange(num_classes), a).reshape(1, ac, 1, 1)
    c1 = (t == d + 1).astype(float)
    c2 = ((t != -1) & (t != d + 1)).astype(float)
    np_ = max(fg_num, 1.0)
    p = sigmoid(logits)
    term1 = (1 - p) ** gamma * np.log(p)
    term2 = p ** gamma * np.log(1 - p)
    return scale * np.sum(-c1 * term1 * alpha / np_ - c2 * term2 * (1 - alpha) / np_)


@pytest.mark.parametrize("fg_num", [0.0, 3.0, 17.0])
@pytest.mark.parametrize("gamma, alpha", [(2.0, 0.25), (1.5, 0.5), (0.0, 0.75)])
def test_detectron_sigmoid_focal_loss(fg_num, gamma, alpha):
    rng = np.random.default_rng(0)
    num_classes, anchors, scale = 4, 3, 1.7
    logits = rng.normal(scale=2.0, size=(2, anchors * num_classes, 3, 5)).astype(np.float32)
    labels = rng.integers(-1, num_classes + 1, size=(2, anchors, 3, 5)).astype(np.float32)
    settings = {"focusing_parameter": gamma, "alpha": alpha, "num_anchors": anchors,
                "ignore_label": -1}
    loss, grad = layer(logits, labels, settings, normalizer=fg_num, loss_weight=scale)
    x = logits.astype(np.float64)
    def theirs(z):
        return detectron_sigmoid_focal_loss(z, labels, fg_num, gamma, alpha, scale, num_classes)
    np.testing.assert_allclose(loss, theirs(x), rtol=1e-5)
    np.testing.assert_allclose(grad, numeric_gradient(theirs, x), rtol=1e-4, atol=1e-7)


def torchvision_sigmoid_focal_loss(inputs, targets, alpha, gamma, reduction):
    """torchvision.ops.sigmoid_focal_loss (= fvcore's): ce·(1 − p_t)^γ, times α_t if α ≥ 0."""
    p = sigmoid(inputs)
    ce = bce_with_logits(inputs, targets)
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return {"mean": loss.mean(), "sum": loss.sum()}[reduction]


TORCHVISION_MAP = {"mean": "full", "sum": "none"}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("alpha", [0.25, -1])
def test_torchvision_sigmoid_focal_loss_on_hard_targets(reduction, alpha):
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=2.0, size=(4, 6, 3)).astype(np.float32)
    targets = (rng.random(logits.shape) < 0.2).astype(np.float32)
    settings = {"focusing_parameter": 2, "normalization": TORCHVISION_MAP[reduction]}
    if alpha >= 0:                       # torchvision's alpha = -1 is "no alpha"
        settings["alpha"] = alpha
    loss, grad = layer(logits, targets, settings)
    x = logits.astype(np.float64)
    def theirs(z):
        return torchvision_sigmoid_focal_loss(z, targets, alpha, 2.0, reduction)
    np.testing.assert_allclose(loss, theirs(x), rtol=1e-5)
    np.testing.assert_allclose(grad, numeric_gradient(theirs, x), rtol=1e-4, atol=1e-8)


def test_torchvision_differs_on_soft_targets_as_the_readme_says():
    """Soft targets: torchvision puts one factor (1 − p_t)^γ on the mixed cross-entropy; this
    layer mixes the two focal terms. Equal at γ = 0, different at γ = 2."""
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=2.0, size=(4, 5)).astype(np.float32)
    soft = rng.random(logits.shape).astype(np.float32)
    for gamma, equal in ((0.0, True), (2.0, False)):
        loss, _ = layer(logits, soft, {"focusing_parameter": gamma, "normalization": "none"})
        theirs = torchvision_sigmoid_focal_loss(logits.astype(np.float64), soft, -1, gamma, "sum")
        assert np.isclose(loss, theirs, rtol=1e-5) == equal


def mmdet_focal_loss(pred, mmdet_labels, gamma, alpha, loss_weight, avg_factor=None):
    """mmdetection FocalLoss(use_sigmoid=True) (py_sigmoid_focal_loss): labels 0..C−1 are
    classes, C is background; one-hot targets; reduction 'mean' divides by avg_factor + eps,
    or by the number of elements without it."""
    num_classes = pred.shape[1]
    target = np.eye(num_classes + 1)[mmdet_labels.astype(int)][:, :num_classes]
    p = sigmoid(pred)
    pt = (1 - p) * target + p * (1 - target)
    focal_weight = (alpha * target + (1 - alpha) * (1 - target)) * pt ** gamma
    loss = bce_with_logits(pred, target) * focal_weight
    reduced = loss.mean() if avg_factor is None else loss.sum() / (avg_factor + np.finfo(np.float32).eps)
    return loss_weight * reduced


@pytest.mark.parametrize("avg_factor", [None, 5.0])
def test_mmdetection_focal_loss(avg_factor):
    rng = np.random.default_rng(3)
    num_classes = 4
    logits = rng.normal(scale=2.0, size=(12, num_classes)).astype(np.float32)
    mmdet_labels = rng.integers(0, num_classes + 1, size=12)
    ours = ((mmdet_labels + 1) % (num_classes + 1)).astype(np.float32)   # background C -> 0
    settings = {"focusing_parameter": 2, "alpha": 0.25}
    if avg_factor is None:
        settings["normalization"] = "full"
    loss, grad = layer(logits, ours, settings, normalizer=avg_factor, loss_weight=1.5)
    x = logits.astype(np.float64)
    def theirs(z):
        return mmdet_focal_loss(z, mmdet_labels, 2.0, 0.25, 1.5, avg_factor)
    np.testing.assert_allclose(loss, theirs(x), rtol=1e-5)
    np.testing.assert_allclose(grad, numeric_gradient(theirs, x), rtol=1e-4, atol=1e-8)


def keras_binary_focal_crossentropy(y_true, logits, gamma, alpha, apply_class_balancing,
                                    label_smoothing):
    """keras.losses.BinaryFocalCrossentropy(from_logits=True), reduction sum_over_batch_size:
    smoothed y = y(1 − ε) + ε/2; (1 − p_t)^γ·bce, times α_t if apply_class_balancing; the mean
    over the last axis, then over the batch."""
    y = y_true * (1 - label_smoothing) + 0.5 * label_smoothing
    p = sigmoid(logits)
    bce = bce_with_logits(logits, y)
    p_t = y * p + (1 - y) * (1 - p)
    loss = (1 - p_t) ** gamma * bce
    if apply_class_balancing:
        loss = (y * alpha + (1 - y) * (1 - alpha)) * loss
    return loss.mean(axis=-1).mean()


@pytest.mark.parametrize("balancing", [False, True])
def test_keras_binary_focal_crossentropy_without_label_smoothing(balancing):
    """Keras keeps classes on the last axis: (N, C) here is the same in both."""
    rng = np.random.default_rng(4)
    logits = rng.normal(scale=2.0, size=(6, 5)).astype(np.float32)
    y = (rng.random(logits.shape) < 0.3).astype(np.float32)
    settings = {"focusing_parameter": 2, "normalization": "full"}
    if balancing:
        settings["alpha"] = 0.25
    loss, grad = layer(logits, y, settings)
    x = logits.astype(np.float64)
    def theirs(z):
        return keras_binary_focal_crossentropy(y, z, 2.0, 0.25, balancing, 0.0)
    np.testing.assert_allclose(loss, theirs(x), rtol=1e-5)
    np.testing.assert_allclose(grad, numeric_gradient(theirs, x), rtol=1e-4, atol=1e-8)


def test_keras_label_smoothing_matches_only_at_gamma_zero():
    rng = np.random.default_rng(5)
    logits = rng.normal(scale=2.0, size=(6, 5)).astype(np.float32)
    y = (rng.random(logits.shape) < 0.3).astype(np.float32)
    for gamma, equal in ((0.0, True), (2.0, False)):
        loss, _ = layer(logits, y, {"focusing_parameter": gamma, "normalization": "full",
                                    "label_smoothing": 0.1})
        theirs = keras_binary_focal_crossentropy(y, logits.astype(np.float64), gamma, 0.25,
                                                 False, 0.1)
        assert np.isclose(loss, theirs, rtol=1e-5) == equal
