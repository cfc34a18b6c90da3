"""Both layers' compiled fast paths against their numpy cores, in whatever Python, numpy and numba
runs this file: tests/test_version_floor.py runs it in a venv of the oldest ones setup.py accepts
(requirements/floor.txt), so that the declared floors are tested, not assumed.

    PYTHONPATH=<repo root> <floor venv>/bin/python tests/floor_check.py

Standalone, Python 3.9 syntax, and importing only the package: the floor venv has numpy and numba,
no pytest and no Caffe (so not tests/cases.py either). Prints each case checked; exits 1 on any
mismatch. Tolerances are tests/fast_checks.py's (float32 rounding)."""
import itertools
import json
import platform
import sys

import llvmlite
import numba
import numpy as np

from focal_loss_layer.core import sigmoid_focal_loss_and_gradient
from focal_loss_layer.fast import FocalLossKernel
from focal_loss_layer.labels import read_labels
from focal_loss_layer.params import parse_param_str, parse_softmax_param_str
from focal_loss_layer.softmax_core import softmax_focal_loss_and_gradient
from focal_loss_layer.softmax_fast import SoftmaxFocalLossKernel

LOSS_RTOL, GRAD_RTOL, GRAD_ATOL_OF_MAX = 2e-6, 1e-5, 1e-6
# No spatial dims (the S == 1 paths), one, two.
SIGMOID_SHAPES = ((5, 3), (2, 3, 7), (2, 3, 4, 5))
SOFTMAX_SHAPES = ((6, 4), (3, 4, 7), (2, 4, 3, 5))
# γ = 0 and 2 are raised to by multiplication, 1.5 by exp: different compiled specialisations.
GAMMAS = (0.0, 2.0, 1.5)
OPTIONS = ({}, {"alpha": 0.25, "ignore_label": -1})
LOSS_WEIGHT = 0.5   # backward must scale by top.diff[0]: a weight of 1 would not show it
IGNORED = 0.2       # the fraction of labels set to ignore_label, when it is set


def inputs(rng, shape, form, ignore_label):
    """float32 (logits, labels) for logits `shape`. form: "targets" (0/1 per logit, the sigmoid
    layer's per-class form), "indices" (one label per position, 0 = background, 1..C) or
    "classes" (one per position, 0..C−1, the softmax layer's)."""
    logits = rng.normal(scale=3.0, size=shape)
    positions = shape[:1] + shape[2:]
    if form == "targets":
        labels = (rng.uniform(size=shape) < 0.3).astype(np.float64)
    else:
        labels = rng.integers(0, shape[1] + (form == "indices"), size=positions).astype(np.float64)
    if ignore_label is not None:
        labels[rng.uniform(size=labels.shape) < IGNORED] = ignore_label
    return logits.astype(np.float32), labels.astype(np.float32)


def sigmoid_reference(logits, labels, settings):
    """(loss, ∂loss/∂x) from core in float64, labels read as FocalLossLayer reads them."""
    params = parse_param_str(json.dumps(settings))
    read = read_labels(labels, logits.shape, params.ignore_label)
    return sigmoid_focal_loss_and_gradient(
        logits.astype(np.float64), read.targets, focusing_parameter=params.focusing_parameter,
        alpha=params.alpha, class_balances=params.class_weights(logits.shape[1]), valid=read.valid,
        label_smoothing=params.label_smoothing, normalization=params.normalization)


def softmax_reference(logits, labels, settings):
    """(loss, ∂loss/∂x) from softmax_core in float64."""
    params = parse_softmax_param_str(json.dumps(settings))
    return softmax_focal_loss_and_gradient(
        logits.astype(np.float64), labels, focusing_parameter=params.focusing_parameter,
        alpha=params.alpha, class_balances=params.class_weights(logits.shape[1]),
        ignore_label=params.ignore_label, normalization=params.normalization)


def compiled(kernel_type, parse, logits, labels, settings):
    """(loss, ∂(LOSS_WEIGHT·loss)/∂x) from the fast path, as a layer runs it; the gradient goes
    into a NaN-filled array, so that an entry the kernel skips shows."""
    kernel = kernel_type(parse(json.dumps(settings)), logits.shape, labels.shape)
    loss = kernel.forward(logits, labels)
    out = np.full(logits.shape, np.nan, np.float32)
    kernel.backward(LOSS_WEIGHT, out)
    return loss, out


def check(name, got, reference):
    """Prints one line for the case; True when loss and gradient agree to float32 rounding."""
    (loss, grad), (ref_loss, ref_grad) = got, reference
    ref_grad = LOSS_WEIGHT * ref_grad
    atol = GRAD_ATOL_OF_MAX * max(float(np.abs(ref_grad).max()), 1e-30)
    loss_ok = abs(loss - ref_loss) <= LOSS_RTOL * abs(ref_loss) + 1e-30
    grad_ok = bool(np.all(np.abs(grad - ref_grad) <= atol + GRAD_RTOL * np.abs(ref_grad)))
    worst = float(np.nanmax(np.abs(grad - ref_grad))) if np.isfinite(grad).all() else float("nan")
    print(f"{'ok  ' if loss_ok and grad_ok else 'FAIL'} {name}: loss {loss:.7g} (core "
          f"{ref_loss:.7g}), max |grad - core| {worst:.2e} of max |grad| {atol / GRAD_ATOL_OF_MAX:.2e}")
    return loss_ok and grad_ok


def cases():
    """(name, compiled result, reference result) for every case of both layers."""
    rng = np.random.default_rng(20240523)
    for shape, form, gamma, options in itertools.product(
            SIGMOID_SHAPES, ("indices", "targets"), GAMMAS, OPTIONS):
        settings = dict(options, focusing_parameter=gamma)
        logits, labels = inputs(rng, shape, form, settings.get("ignore_label"))
        yield (f"FocalLossLayer {shape} {form} {settings}",
               compiled(FocalLossKernel, parse_param_str, logits, labels, settings),
               sigmoid_reference(logits, labels, settings))
    for shape, gamma, options in itertools.product(SOFTMAX_SHAPES, GAMMAS, OPTIONS):
        settings = dict(options, focusing_parameter=gamma)
        logits, labels = inputs(rng, shape, "classes", settings.get("ignore_label"))
        yield (f"SoftmaxFocalLossLayer {shape} classes {settings}",
               compiled(SoftmaxFocalLossKernel, parse_softmax_param_str, logits, labels, settings),
               softmax_reference(logits, labels, settings))


def main():
    print(f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
          f"llvmlite {llvmlite.__version__}; loss_weight {LOSS_WEIGHT}")
    results = [check(*case) for case in cases()]
    failed = results.count(False)
    print(f"{len(results) - failed} of {len(results)} cases match the numpy cores")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
