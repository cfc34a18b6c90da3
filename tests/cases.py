"""Random inputs shared by the core and layer tests: logits with both label forms and every
option, small enough for per-element loops; and the table of the two layers (CaffeLayer)."""
from dataclasses import dataclass
from typing import Callable

import pytest
from naive_reference import naive_focal_loss, naive_softmax_focal_loss

GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)
NORMALIZATIONS = ("batch_size", "full", "valid", "positives", "none")

# Settings as param_str dicts; each names what it exercises.
OPTION_SETS = {
    "plain": {},
    "alpha": {"alpha": 0.25},
    "class_balances_list": {"class_balances": [0.5, 2.0, 1.0]},
    "class_balances_dict": {"class_balances": {"2": 3.0, 3: 0.0}},
    "ignore_label": {"ignore_label": -1},
    "label_smoothing": {"label_smoothing": 0.1},
    "everything": {"alpha": 0.75, "class_balances": [1.5, 0.5, 2.0], "ignore_label": 255,
                   "label_smoothing": 0.2, "normalization": "positives"},
}


def naive_kwargs(settings, num_classes=3):
    """The same settings in naive_focal_loss's terms."""
    import json

    from focal_loss_layer.params import parse_param_str
    params = parse_param_str(json.dumps(settings))
    return dict(gamma=params.focusing_parameter, alpha=params.alpha,
                class_balances=params.class_weights(num_classes), normalization=params.normalization,
                ignore_label=params.ignore_label, label_smoothing=params.label_smoothing)


def make_case(rng, form, shape=(2, 3, 4), ignore_label=None, soft=False, scale=3.0):
    """(logits, labels) of the given logits shape; form 'targets' or 'indices'."""
    logits = rng.normal(scale=scale, size=shape)
    n, c = shape[:2]
    spatial = shape[2:]
    if form == "targets":
        labels = rng.uniform(size=shape) if soft else (rng.uniform(size=shape) < 0.3).astype(float)
        if ignore_label is not None:
            labels[rng.uniform(size=shape) < 0.2] = ignore_label
    else:
        labels = rng.integers(0, c + 1, size=(n,) + spatial).astype(float)
        if ignore_label is not None:
            labels[rng.uniform(size=labels.shape) < 0.2] = ignore_label
    return logits, labels


# SoftmaxFocalLossLayer: settings as param_str dicts (class ids 0..C−1), each naming what it
# exercises, and inputs with one class label per position.
SOFTMAX_NORMALIZATIONS = ("valid", "full", "batch_size", "none")
SOFTMAX_OPTION_SETS = {
    "plain": {},
    "alpha": {"alpha": 0.25},
    "class_balances_list": {"class_balances": [0.5, 2.0, 1.0, 1.5]},
    "class_balances_dict": {"class_balances": {"0": 0.1, 3: 0.0}},
    "ignore_label": {"ignore_label": -1},
    "ignore_label_in_class_range": {"ignore_label": 0},
    "everything": {"alpha": 0.75, "class_balances": [1.5, 0.5, 2.0, 1.0], "ignore_label": 255,
                   "normalization": "full"},
}


def make_softmax_case(rng, shape=(2, 4, 3), ignore_label=None, scale=3.0, ignored=0.2):
    """(logits, labels): logits of `shape` (N, C, *spatial), labels (N, *spatial) in 0..C−1,
    a fraction `ignored` of them set to ignore_label when it is given."""
    logits = rng.normal(scale=scale, size=shape)
    labels = rng.integers(0, shape[1], size=shape[:1] + shape[2:]).astype(float)
    if ignore_label is not None:
        labels[rng.uniform(size=labels.shape) < ignored] = ignore_label
    return logits, labels


def softmax_kwargs(settings, num_classes):
    """param_str settings in softmax_core.softmax_focal_loss_and_gradient's (and the naive loop's) terms."""
    import json

    from focal_loss_layer.params import parse_softmax_param_str
    params = parse_softmax_param_str(json.dumps(settings))
    return dict(focusing_parameter=params.focusing_parameter, alpha=params.alpha,
                class_balances=params.class_weights(num_classes),
                ignore_label=params.ignore_label, normalization=params.normalization)


# The package's two layers, one row each, for the tests that drive either in a real caffe.Net
# (test_layers, test_topologies, test_netspec, test_caffe_gradient_checker): what differs between
# them is said here once, as focal_loss_layer/check/cases.py says it for the check.
@dataclass(frozen=True)
class CaffeLayer:
    """name: the python_param layer; twin: Caffe's C++ loss equal to it at γ = 0 (both at their
    default normalization); targets: whether it takes per-class targets (labels of the logits'
    shape; then they are the only labels its twin takes); netspec: its focal_loss_layer.netspec
    helper; inputs and naive: below."""

    name: str
    twin: str
    targets: bool
    netspec: str
    make_inputs: Callable
    naive_loop: Callable

    def inputs(self, rng, shape, form=None, **kw):
        """(logits, labels) of logits `shape`: one label per position ((N, *spatial)) unless form
        is "targets" (the sigmoid layer's per-class targets); kw: ignore_label, scale, ..."""
        return self.make_inputs(rng, shape, form, **kw)

    def naive(self, logits, labels, settings):
        """(loss, gradient) of param_str `settings` by tests/naive_reference.py's loops."""
        return self.naive_loop(logits, labels, settings, logits.shape[1])

    def labels_shape(self, logits_shape, form=None):
        return tuple(logits_shape) if form == "targets" else (logits_shape[0],) + tuple(logits_shape[2:])


def _sigmoid_inputs(rng, shape, form, **kw):
    return make_case(rng, form or "indices", shape=shape, **kw)


def _softmax_inputs(rng, shape, form, **kw):
    assert form in (None, "classes"), form
    return make_softmax_case(rng, shape, **kw)


def _sigmoid_naive(logits, labels, settings, num_classes):
    return naive_focal_loss(logits, labels, **naive_kwargs(settings, num_classes))


def _softmax_naive(logits, labels, settings, num_classes):
    return naive_softmax_focal_loss(logits, labels, **softmax_kwargs(settings, num_classes))


SIGMOID = CaffeLayer("FocalLossLayer", "SigmoidCrossEntropyLoss", True, "sigmoid_focal_loss_layer",
                     _sigmoid_inputs, _sigmoid_naive)
SOFTMAX = CaffeLayer("SoftmaxFocalLossLayer", "SoftmaxWithLoss", False, "softmax_focal_loss_layer",
                     _softmax_inputs, _softmax_naive)
LAYERS = (SIGMOID, SOFTMAX)


def layer_id(value):
    """pytest ids: a CaffeLayer by its name, anything else as pytest would name it."""
    return value.name if isinstance(value, CaffeLayer) else None


# Each layer with each label form it takes: (layer, form) for CaffeLayer.inputs.
LABEL_FORMS = [pytest.param(layer, form, id=f"{layer.name}-{form or 'per-position'}")
               for layer in LAYERS for form in ((None, "targets") if layer.targets else (None,))]
