"""The fast path of FocalLossLayer: the compiled pass (focal_loss_layer.kernels) over the logits,
split across threads for large blobs. BlockedKernel, the machinery around a pass (threads,
scratch, per-block sums, normaliser, input checks, the kept gradient), also runs
SoftmaxFocalLossLayer's (focal_loss_layer.softmax_fast).

    kernel = FocalLossKernel(params, logits_shape, labels_shape)
    loss = kernel.forward(logits, labels)       # the loss; keeps its gradient (input checks)
    kernel.backward(loss_weight, out)           # out = ∂(loss_weight·loss)/∂x, a scaled copy

logits: (N, C, *spatial) float32; labels: either label form (focal_loss_layer.labels); out:
C-contiguous float32 of the logits' size (Caffe's bottom diff). The results equal
focal_loss_layer.core.sigmoid_focal_loss_and_gradient's to float32 rounding (tests/test_fast.py).
Bad inputs raise the same InputError messages as labels.check_labels and check_finite: numpy
looks for them only after the pass flagged some, so valid inputs are read once.

Forward computes the loss and the gradient of the summed loss in one pass and keeps the gradient
in a float32 buffer the size of the logits, made with the kernel (in the layer's reshape) and
reused; backward multiplies it by loss_weight / normalizer into the diff and reads no input.
Caffe's own losses do the same (SigmoidCrossEntropyLoss keeps sigmoid_output_, SoftmaxWithLoss
prob_): the gradient is forward's whatever happens to the logits in between (an in-place layer
on a view of them, declared after the loss), by construction.
Memory: that buffer, and per thread a scratch of 6 × BLOCK floats (192 KB) and, without spatial
dims, weights tiled to BLOCK + C entries.
"""
import math
from typing import Optional, Tuple

import numpy as np

from . import kernels
from .core import normalizer_from_counts
from .errors import InputError
from .labels import INDICES, anchor_view, check_label_form, check_labels
from .params import FLT_MAX, FocalLossParams
from .threads import run_split, thread_limit

# Below this many logits one thread does the work: handing a block range to another thread costs
# ~30 µs, more than a small blob's whole loss.
PARALLEL_MIN_SIZE = 1 << 17
_PAGE = 4096


def check_finite(logits: np.ndarray, blob: str = "bottom[0] (logits)") -> None:
    """Raise InputError with the count and first index of NaN/±inf logits, if there are any;
    blob names them in the message."""
    finite = np.isfinite(logits)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise InputError(
            f"{blob} holds {logits.size - np.count_nonzero(finite)} non-finite "
            f"value(s) (NaN or ±inf); the first is {logits[where].item()} at index {where}. The net "
            "diverged or its input holds NaN: lower base_lr, clip gradients, or check the data")


class BlockedKernel:
    """What the fast paths share: a compiled pass run over blocks of the logits, the blocks split
    into contiguous ranges across threads, each thread with a scratch placed at the logits' page
    offset; per-block sums (kernels.STAT_*) added in a fixed order; the loss and normaliser from
    them, the input checks when the pass flagged something, and the kept gradient.

    A subclass's __init__ sets params (normalization, ignore_label), form and num_classes (for
    check_labels), counts_shape (normalizer_from_counts' shape), size (the logits' count),
    gradient_bound (a bound on |dℓ/dx| per logit from the settings: max weight × (1 + γ)),
    _pass_function and _arguments (the pass's arguments after the block range), then calls
    _plan."""

    def _plan(self, blocks: int, scratch_rows: int, block: int, threads: Optional[int]) -> None:
        self.normalizer: Optional[float] = None    # from the last forward's counts
        # ∂(Σ ℓ)/∂x of the last forward, before loss_weight and the normaliser: what backward
        # scales into the diff.
        self.gradient = np.empty(self.size, np.float32)
        self._stats = np.zeros((blocks, kernels.NUM_STATS))
        self._scratch_shape = (scratch_rows, block)
        if threads is None:
            threads = thread_limit() if self.size >= PARALLEL_MIN_SIZE else 1
        threads = max(1, min(threads, blocks))
        # Contiguous block ranges, one per thread.
        self._ranges = [(blocks * k // threads, blocks * (k + 1) // threads) for k in range(threads)]
        # Per thread: (scratch, first block, stop block, *self._arguments), made by the first pass.
        self._per_thread = []

    def forward(self, logits: np.ndarray, labels: np.ndarray,
                normalizer: Optional[float] = None) -> float:
        """The loss; keeps its gradient and normaliser for backward. Writes nothing of the
        caller's. InputError on non-finite logits, bad labels, or a loss beyond float32's range.

        normalizer: a divisor given from outside (e.g. the positives of a whole FPN batch), used
        as max(normalizer, 1) instead of params.normalization's; finite and >= 0 (the caller's
        to check)."""
        self.normalizer = None              # until this pass completes without an error
        self._pass(logits, labels)
        loss, positives, valid, bad = _totals(self._stats)
        if math.isnan(loss):
            # NaN marks a non-finite logit (finite settings and logits make no NaN loss).
            check_finite(logits)
        if bad:
            check_labels(labels, self.form, self.num_classes, self.params.ignore_label)
        divisor = (max(1.0, normalizer) if normalizer is not None else
                   normalizer_from_counts(self.params.normalization, self.counts_shape,
                                          valid, positives))
        if not abs(loss / divisor) <= FLT_MAX:
            raise InputError(self._overflow_message("loss", loss / divisor, logits))
        self.normalizer = divisor
        return loss / divisor

    def backward(self, loss_weight: float, out: np.ndarray) -> None:
        """out[...] = ∂(loss_weight·loss)/∂x of the last forward: its kept gradient times
        loss_weight / normalizer, in float32. out: C-contiguous float32 of the logits' size (e.g.
        Caffe's bottom diff); written in place, never copied. InputError where the settings and
        loss_weight make the gradient overflow float32."""
        if self.normalizer is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward needs a forward that completed first")
        scale = loss_weight / self.normalizer
        grad = _flat_view(out, self.size)
        if max(1.0, abs(scale)) * self.gradient_bound <= FLT_MAX:
            # Within the bound every value is finite by construction: no check, no read.
            self._scale_into(np.float32(scale), grad)
            return
        with np.errstate(over="ignore", invalid="ignore"):     # the error below says it
            np.multiply(self.gradient, np.float32(scale), out=grad)
        if not np.isfinite(grad).all():
            raise InputError(self._overflow_message(
                f"gradient (of the summed loss, times loss_weight / normalizer = {scale:.7g})",
                math.inf, None))

    def _scale_into(self, scale: np.float32, grad: np.ndarray) -> None:
        """grad = scale × the kept gradient, split into the pass's threads' shares on large
        blobs (numpy releases the GIL in a ufunc: a 16 M-logit copy is memory-bound, and two
        cores move it faster than one)."""
        if len(self._ranges) == 1:
            np.multiply(self.gradient, scale, out=grad)
            return
        bounds = np.linspace(0, self.size, len(self._ranges) + 1).astype(np.int64)
        run_split(_multiply, [(self.gradient[a:b], scale, grad[a:b])
                              for a, b in zip(bounds[:-1], bounds[1:])])

    def _overflow_message(self, what: str, value: float, logits: Optional[np.ndarray]) -> str:
        """Why finite settings and logits gave a {what} beyond float32's range."""
        weight = self.gradient_bound / (1.0 + self.params.focusing_parameter)
        largest = "" if logits is None else (
            f", the largest |logit| {np.abs(logits).max().item():.7g}")
        return (
            f"the {what} overflows float32 (it is {value:.7g}; float32's largest is "
            f"{FLT_MAX:.7g}): settings and logits are finite but too large together: the "
            f"largest class weight (class_balances × alpha) {weight:.7g}, focusing_parameter "
            f"{self.params.focusing_parameter:.7g}{largest}. A per-logit loss is up to weight × "
            "(|logit| + 0.7) and its gradient up to weight × (1 + focusing_parameter): lower the "
            "largest class_balances weight or loss_weight, or check the logits' scale")

    def _pass(self, logits, labels) -> None:
        """The compiled pass over every block, the block ranges split across threads."""
        x, t = _flat(logits), _flat(labels)
        if not self._per_thread:
            # The scratch sits at the logits' offset within a page: when a store lands a little
            # ahead of a later load modulo 4096, the CPU takes the load for a read of the stored
            # data and waits ("4K aliasing"), measured 5× slower here. Made once: a Caffe blob
            # keeps its memory while its shape stays, and a new shape makes a new kernel.
            page_offset = x.ctypes.data % _PAGE
            self._per_thread = [
                (_empty_at_page_offset(page_offset, math.prod(self._scratch_shape))
                 .reshape(self._scratch_shape), first, stop) + self._arguments
                for first, stop in self._ranges]
        head = (x, t, self.gradient, self._stats)
        run_split(self._pass_function, [head + tail for tail in self._per_thread])


class FocalLossKernel(BlockedKernel):
    """The fast path for one layer's settings and one pair of blob shapes. threads: how many
    threads share a pass (default: focal_loss_layer.threads.thread_limit() for
    PARALLEL_MIN_SIZE logits or more, else 1); the results do not depend on it."""

    def __init__(self, params: FocalLossParams, logits_shape: Tuple[int, ...],
                 labels_shape: Tuple[int, ...], threads: Optional[int] = None):
        self.params = params
        self.logits_shape = self.counts_shape = tuple(logits_shape)
        self.shapes = (self.logits_shape, tuple(labels_shape))
        self.form = check_label_form(self.logits_shape, labels_shape, params.ignore_label,
                                     params.num_anchors)
        # A anchors are A times as many samples of C classes: same memory, other shape.
        view_shape, _ = anchor_view(self.logits_shape, labels_shape, params.num_anchors)
        self.num_classes = num_classes = view_shape[1]
        # Resolved per kernel, not once per layer: a net's TRAIN and TEST copies may differ in C.
        class_weights = params.class_weights(num_classes)
        self.size = math.prod(view_shape)
        inner = math.prod(view_shape[2:])
        a_pos, a_neg = (1.0, 1.0) if params.alpha is None else (params.alpha, 1.0 - params.alpha)
        weights = np.asarray(class_weights, dtype=np.float64)
        w_pos, w_neg = (weights * a_pos).astype(np.float32), (weights * a_neg).astype(np.float32)
        self._pass_function = kernels.focal_pass
        self._arguments = (
            w_pos, w_neg, *_tiles(w_pos, w_neg, inner, self.size), num_classes, inner,
            self.form == INDICES, *gamma_arguments(params.focusing_parameter),
            *ignore_arguments(params.ignore_label), np.float32(params.label_smoothing))
        self.gradient_bound = gradient_bound(weights * max(a_pos, a_neg), params.focusing_parameter)
        self._plan(-(-self.size // kernels.BLOCK), kernels.SCRATCH_ROWS, kernels.BLOCK, threads)


def _multiply(source: np.ndarray, scale: np.float32, out: np.ndarray) -> None:
    np.multiply(source, scale, out=out)


def _totals(stats: np.ndarray) -> list:
    """The per-block sums (stats rows) added up in a fixed order."""
    return (stats[0] if len(stats) == 1 else stats.sum(axis=0)).tolist()


def gradient_bound(weights: np.ndarray, gamma: float) -> float:
    """max(weights) × (1 + γ), float64: no |dℓ/dx| of either loss, nor any float32 value the
    passes compute it from, exceeds it (sigmoid: |dℓ±/dx| ≤ 1 + γ/e; softmax: |dℓ/dx_y| ≤
    1 + γ/e and s_j·p·(−log p)/R ≤ 1 for j ≠ y; each times the weight). While it is within
    float32's range the kept gradient is finite by construction."""
    return float(np.max(weights, initial=0.0)) * (1.0 + gamma)


def gamma_arguments(gamma: float):
    """The pass arguments (gamma, int_gamma, real_gamma) of kernels._powers for γ: an integer
    γ ≤ MAX_MULTIPLIED_GAMMA is raised to by multiplication, any other by exp."""
    multiplied = gamma.is_integer() and gamma <= kernels.MAX_MULTIPLIED_GAMMA
    return (np.float32(gamma), int(gamma) if multiplied else 0,
            None if multiplied else np.float32(gamma))


def ignore_arguments(ignore_label: Optional[int]):
    """The pass arguments (has_ignore, ignore) for ignore_label."""
    return ignore_label is not None, np.float32(0 if ignore_label is None else ignore_label)


def _tiles(w_pos: np.ndarray, w_neg: np.ndarray, inner: int, size: int):
    """(tiles, row_tile) of kernels._cycle_segment for S == 1: w_pos, w_neg and the class ids
    1..C repeated to cover one block from any class on, and k div C; empty when S > 1."""
    num_classes = len(w_pos)
    length = min(size, kernels.BLOCK) + num_classes - 1 if inner == 1 else 0
    k = np.arange(length)
    tiles = (w_pos[k % num_classes], w_neg[k % num_classes],
             (k % num_classes + 1).astype(np.float32))
    return tiles, k // num_classes


def _empty_at_page_offset(offset: int, size: int) -> np.ndarray:
    """An uninitialised float32 array of `size` values whose address is `offset` modulo 4096."""
    buffer = np.empty(size + _PAGE // 4, np.float32)
    shift = ((offset - buffer.ctypes.data) % _PAGE) // 4
    return buffer[shift:shift + size]


def _flat_view(array: np.ndarray, size: int) -> np.ndarray:
    """array as a 1-D float32 view, never a copy: the kernel writes through it."""
    if not (array.flags.c_contiguous and array.dtype == np.float32 and array.size == size):
        raise ValueError(f"gradient arrays must be C-contiguous float32 with {size} values, got "
                         f"{array.dtype} {array.shape}")
    return array.reshape(-1)


def _flat(array: np.ndarray) -> np.ndarray:
    """A 1-D float32 C-order view of array (a copy only if it is not already one, as Caffe's are)."""
    return np.ascontiguousarray(array, dtype=np.float32).reshape(-1)
