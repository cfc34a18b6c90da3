"""The fast path of FocalLossLayer: one compiled pass (focal_loss_layer.kernels) computes the loss,
the gradient, the normaliser's counts and the input checks; large blobs run it on every core.

    kernel = FocalLossKernel(params, class_weights, logits_shape, labels_shape)
    loss, grad_scale = kernel.forward(logits, labels, grad)   # grad: float32 buffer, filled
    kernel.scale(grad, grad_scale * loss_weight, bottom_diff)  # ∂(loss_weight·loss)/∂x

logits: (N, C, *spatial) float32; labels: either label form (focal_loss_layer.labels); grad and
bottom_diff: float32 like logits. The results equal focal_loss_layer.core.sigmoid_focal_loss's
to float32 rounding (tests/test_fast.py). Bad inputs raise the same InputError messages as
labels.check_labels and check_finite, found again by numpy only after the kernel flagged them,
so valid inputs are read once.
"""
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Optional, Tuple

import numpy as np

from . import kernels
from .errors import InputError
from .labels import INDICES, check_labels, label_form
from .params import FocalLossParams

# Below this many logits one thread does the work: handing a block range to another thread costs
# ~30 µs, more than a small blob's whole loss.
PARALLEL_MIN_SIZE = 1 << 17
_THREADS = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)
_pools: Dict[int, ThreadPoolExecutor] = {}   # by worker count, made on first use


def check_finite(logits: np.ndarray) -> None:
    """Raise InputError with the count and first index of NaN/±inf logits, if there are any."""
    finite = np.isfinite(logits)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise InputError(
            f"bottom[0] (logits) holds {logits.size - np.count_nonzero(finite)} non-finite "
            f"value(s) (NaN or ±inf); the first is {logits[where].item()} at index {where}. The net "
            "diverged or its input holds NaN: lower base_lr, clip gradients, or check the data")


def normalizer_from_counts(normalization: str, logits_shape: Tuple[int, ...], valid: float,
                           positives: float) -> float:
    """core.normalizer's divisor (at least 1) from the kernel's counts: valid = non-ignored
    logits, positives = Σ unsmoothed targets over them."""
    count = {"batch_size": logits_shape[0], "full": math.prod(logits_shape), "valid": valid,
             "positives": positives, "none": 1}[normalization]
    return max(1.0, float(count))


class FocalLossKernel:
    """The kernel's arguments for one layer's settings and one pair of blob shapes. threads:
    how many threads share a pass (default: every core for PARALLEL_MIN_SIZE logits or more,
    else 1); the results do not depend on it."""

    def __init__(self, params: FocalLossParams, class_weights: np.ndarray,
                 logits_shape: Tuple[int, ...], labels_shape: Tuple[int, ...],
                 threads: Optional[int] = None):
        self.params = params
        self.logits_shape = tuple(logits_shape)
        self.shapes = (self.logits_shape, tuple(labels_shape))
        self.form = label_form(self.logits_shape, labels_shape)
        self.num_classes = self.logits_shape[1]
        self.size = math.prod(self.logits_shape)
        a_pos, a_neg = (1.0, 1.0) if params.alpha is None else (params.alpha, 1.0 - params.alpha)
        weights = np.asarray(class_weights, dtype=np.float64)
        gamma = params.focusing_parameter
        multiplied = gamma.is_integer() and gamma <= kernels.MAX_MULTIPLIED_GAMMA
        ignore = params.ignore_label
        self._arguments = (
            (weights * a_pos).astype(np.float32), (weights * a_neg).astype(np.float32),
            self.num_classes, math.prod(self.logits_shape[2:]), self.form == INDICES,
            np.float32(gamma), int(gamma) if multiplied else 0,
            None if multiplied else np.float32(gamma),
            ignore is not None, np.float32(0 if ignore is None else ignore),
            np.float32(params.label_smoothing))
        blocks = -(-self.size // kernels.BLOCK)
        self._stats = np.zeros((blocks, kernels.NUM_STATS))
        if threads is None:
            threads = _THREADS if self.size >= PARALLEL_MIN_SIZE else 1
        threads = max(1, min(threads, blocks))
        # Contiguous block ranges, one per thread.
        self._ranges = [(blocks * k // threads, blocks * (k + 1) // threads) for k in range(threads)]

    def forward(self, logits: np.ndarray, labels: np.ndarray, grad: np.ndarray) -> Tuple[float, float]:
        """Fill grad (float32, logits' shape) with the unnormalised dℓ/dx and return
        (loss, 1/normalizer), the factor grad still needs. InputError on non-finite logits or
        bad labels."""
        x, t, g = _flat(logits), _flat(labels), grad.reshape(-1)
        stats = self._stats
        stats.fill(0.0)
        self._run(kernels.focal_pass, [(x, t, g, stats, first, stop) + self._arguments
                                       for first, stop in self._ranges])
        loss, positives, valid, bad = stats.sum(axis=0)
        if not math.isfinite(loss):
            # NaN marks a non-finite logit; a finite-logit overflow to inf is a loss, not an error.
            check_finite(logits)
        if bad:
            check_labels(labels, self.form, self.num_classes, self.params.ignore_label)
            raise AssertionError("kernel flagged labels that check_labels allows")
        scale = 1.0 / normalizer_from_counts(self.params.normalization, self.logits_shape,
                                             valid, positives)
        return loss * scale, scale

    def scale(self, grad: np.ndarray, factor: float, out: np.ndarray) -> None:
        """out[...] = grad · factor (float32), on every core for large blobs. out: C-contiguous
        float32 (Caffe's diff), written in place."""
        if not (out.flags.c_contiguous and out.dtype == np.float32):
            raise ValueError("out must be a C-contiguous float32 array")
        source, target = grad.reshape(-1), out.reshape(-1)
        factor = np.float32(factor)
        size = source.size
        self._run(kernels.scale_into, [
            (source, factor, target, first * kernels.BLOCK, min(size, stop * kernels.BLOCK))
            for first, stop in self._ranges])

    @staticmethod
    def _run(function, argument_lists) -> None:
        """function(*arguments) for each list: all but the last on the pool, the last here."""
        workers = len(argument_lists) - 1
        if workers == 0:
            function(*argument_lists[0])
            return
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="focal_loss")
        futures = [_pools[workers].submit(function, *arguments)
                   for arguments in argument_lists[:-1]]
        function(*argument_lists[-1])
        for future in futures:
            future.result()


def _flat(array: np.ndarray) -> np.ndarray:
    """A 1-D float32 C-order view of array (a copy only if it is not already one, as Caffe's are)."""
    return np.ascontiguousarray(array, dtype=np.float32).reshape(-1)
