"""What each layer is checked on: its name, Caffe's own loss that equals it at γ = 0 (the twin),
inputs of several shapes and both label forms, and the numpy core's loss and gradient for them."""
import json
from dataclasses import dataclass, field
from typing import Callable, Tuple

import numpy as np

from ..core import sigmoid_focal_loss_and_gradient
from ..labels import read_labels
from ..params import parse_param_str, parse_softmax_param_str
from ..softmax_core import softmax_focal_loss_and_gradient


@dataclass(frozen=True)
class Case:
    """Logits of `shape`, labels of `labels_shape` (`form` says which kind), the layer's settings."""

    title: str
    shape: Tuple[int, ...]
    labels_shape: Tuple[int, ...]
    form: str                       # "targets", "soft targets", "indices" or "classes"
    settings: dict = field(default_factory=dict)

    def inputs(self, seed: int = 0):
        """(logits, labels) as float32, logits spread over ±6 (both tails of the sigmoid)."""
        rng = np.random.default_rng(seed)
        logits = rng.normal(scale=3.0, size=self.shape).astype(np.float32)
        num_classes = self.shape[1]
        if self.form == "soft targets":
            labels = rng.uniform(size=self.labels_shape)
        elif self.form == "targets":
            labels = rng.uniform(size=self.labels_shape) < 0.3
        else:   # indices 0..C (0 background), classes 0..C-1
            labels = rng.integers(0, num_classes + (self.form == "indices"), self.labels_shape)
        labels = labels.astype(np.float32)
        ignore = self.settings.get("ignore_label")
        if ignore is not None:
            labels[rng.uniform(size=labels.shape) < 0.2] = ignore
        return logits, labels


@dataclass(frozen=True)
class LayerUnderTest:
    """A layer of the package: its class name, the numpy core's answer, Caffe's twin at γ = 0
    (label form it takes), and the cases to check."""

    name: str
    reference: Callable            # (settings, logits, labels) -> (loss, grad), float64
    twin: str                      # Caffe's own loss layer type equal to it at γ = 0
    twin_form: str
    cases: Tuple[Case, ...]


def sigmoid_reference(settings: dict, logits: np.ndarray, labels: np.ndarray):
    """FocalLossLayer's loss and gradient by focal_loss_layer.core, in float64."""
    params = parse_param_str(json.dumps(settings))
    read = read_labels(labels, logits.shape, params.ignore_label)
    return sigmoid_focal_loss_and_gradient(
        logits.astype(np.float64), read.targets, focusing_parameter=params.focusing_parameter,
        alpha=params.alpha, class_balances=params.class_weights(logits.shape[1]),
        valid=read.valid, label_smoothing=params.label_smoothing,
        normalization=params.normalization)


def softmax_reference(settings: dict, logits: np.ndarray, labels: np.ndarray):
    """SoftmaxFocalLossLayer's loss and gradient by focal_loss_layer.softmax_core, in float64."""
    params = parse_softmax_param_str(json.dumps(settings))
    return softmax_focal_loss_and_gradient(
        logits.astype(np.float64), labels, focusing_parameter=params.focusing_parameter,
        alpha=params.alpha, class_balances=params.class_weights(logits.shape[1]),
        ignore_label=params.ignore_label, normalization=params.normalization)


SIGMOID = LayerUnderTest("FocalLossLayer", sigmoid_reference, "SigmoidCrossEntropyLoss", "targets", (
    Case("(8,5), indices (8,), γ 2, α 0.25", (8, 5), (8,), "indices",
         {"focusing_parameter": 2, "alpha": 0.25}),
    Case("(2,3,4,5), soft targets, γ 0.5, weights, full", (2, 3, 4, 5), (2, 3, 4, 5),
         "soft targets", {"focusing_parameter": 0.5, "class_balances": [0.5, 2.0, 1.0],
                          "normalization": "full"}),
    Case("(2,4,3,3), indices (2,1,3,3), ignore -1, positives", (2, 4, 3, 3),
         (2, 1, 3, 3), "indices", {"focusing_parameter": 1, "ignore_label": -1,
                                   "normalization": "positives"}),
))

SOFTMAX = LayerUnderTest("SoftmaxFocalLossLayer", softmax_reference, "SoftmaxWithLoss", "classes", (
    Case("(8,5), classes (8,), γ 2", (8, 5), (8,), "classes", {"focusing_parameter": 2}),
    Case("(2,4,3,5), classes (2,1,3,5), ignore 255, α, weights", (2, 4, 3, 5),
         (2, 1, 3, 5), "classes", {"focusing_parameter": 1, "alpha": 0.25, "ignore_label": 255,
                                   "class_balances": [0.5, 1.0, 2.0, 1.5]}),
    Case("(2,3,6), classes (2,6), γ 0.5, full", (2, 3, 6), (2, 6), "classes",
         {"focusing_parameter": 0.5, "normalization": "full"}),
))

LAYERS = (SIGMOID, SOFTMAX)
