"""The fast path of FocalLossLayer: compiled passes (focal_loss_layer.kernels) over the logits,
split across threads for large blobs. BlockedKernel, the machinery around a pass (threads,
scratch, per-block sums, normaliser, input checks), also runs SoftmaxFocalLossLayer's
(focal_loss_layer.softmax_fast).

    kernel = FocalLossKernel(params, logits_shape, labels_shape)
    loss = kernel.forward(logits, labels)                  # loss, counts, input checks
    kernel.backward(logits, labels, loss_weight, out)      # out = ∂(loss_weight·loss)/∂x

logits: (N, C, *spatial) float32; labels: either label form (focal_loss_layer.labels); out:
C-contiguous float32 of the logits' size (Caffe's bottom diff). The results equal
focal_loss_layer.core.sigmoid_focal_loss_and_gradient's to float32 rounding (tests/test_fast.py). Bad inputs
raise the same InputError messages as labels.check_labels and check_finite: numpy looks for them
only after the kernel flagged some, so valid inputs are read once.

Backward recomputes the gradient from the logits instead of keeping it from forward: forward
writes nothing the size of the logits (Caffe's contract: no bottom diff before backward), and
backward writes each gradient value once, already scaled, straight into the diff. Recomputing
trusts that the logits (and labels) are still forward's: both passes add up a hash of the bits
of every input they read (kernels.checksum_pairs into STAT_CHECKSUM, an exact integer sum), and
backward raises InputError when its sum differs from forward's (an in-place layer on a view of
the logits declared after the loss rewrites them in between).
Memory: per thread a scratch of 5 × BLOCK floats (160 KB) and, without spatial dims, weights
tiled to BLOCK + C entries; nothing the size of the logits.
"""
import math
from typing import Optional, Tuple

import numpy as np

from . import kernels
from .core import normalizer_from_counts
from .errors import InputError
from .labels import INDICES, anchor_view, check_label_form, check_labels
from .params import FocalLossParams
from .threads import run_split, thread_limit

# Below this many logits one thread does the work: handing a block range to another thread costs
# ~30 µs, more than a small blob's whole loss.
PARALLEL_MIN_SIZE = 1 << 17
_PAGE = 4096


def check_finite(logits: np.ndarray) -> None:
    """Raise InputError with the count and first index of NaN/±inf logits, if there are any."""
    finite = np.isfinite(logits)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise InputError(
            f"bottom[0] (logits) holds {logits.size - np.count_nonzero(finite)} non-finite "
            f"value(s) (NaN or ±inf); the first is {logits[where].item()} at index {where}. The net "
            "diverged or its input holds NaN: lower base_lr, clip gradients, or check the data")


class BlockedKernel:
    """What the fast paths share: a compiled pass run over blocks of the logits, the blocks split
    into contiguous ranges across threads, each thread with a scratch placed at the logits' page
    offset; per-block sums (kernels.STAT_*) added in a fixed order; the loss and normaliser from
    them, and the input checks when the pass flagged something.

    A subclass's __init__ sets params (normalization, ignore_label), form and num_classes (for
    check_labels), counts_shape (normalizer_from_counts' shape), size (the logits' count),
    _pass_function and _arguments (the pass's arguments after the block range), then calls
    _plan."""

    def _plan(self, blocks: int, scratch_rows: int, block: int, threads: Optional[int]) -> None:
        self.normalizer: Optional[float] = None    # from the last forward's counts
        self._forward_checksum: Optional[float] = None    # of the last forward's inputs
        self._stats = np.zeros((blocks, kernels.STATS_COLUMNS))
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
        """The loss; keeps the normalizer for backward. Writes nothing but the kernel's own
        per-block sums. InputError on non-finite logits or bad labels.

        normalizer: a divisor given from outside (e.g. the positives of a whole FPN batch), used
        as max(normalizer, 1) instead of params.normalization's; finite and >= 0 (the caller's
        to check)."""
        self.normalizer = None              # until this pass completes without an error
        stats = self._stats
        self._pass(logits, labels, None, np.float32(0), stats)
        loss, positives, valid, bad, checksum = _totals(stats)
        if math.isnan(loss):
            # NaN marks a non-finite logit (or label); a finite-logit overflow to inf is a loss,
            # not an error.
            check_finite(logits)
        if bad:
            check_labels(labels, self.form, self.num_classes, self.params.ignore_label)
            raise AssertionError("kernel flagged labels that check_labels allows")
        if math.isnan(loss):
            raise AssertionError("kernel marked a non-finite logit that check_finite does not find")
        self.normalizer = (max(1.0, normalizer) if normalizer is not None else
                           normalizer_from_counts(self.params.normalization, self.counts_shape,
                                                  valid, positives))
        self._forward_checksum = checksum
        return loss / self.normalizer

    def backward(self, logits: np.ndarray, labels: np.ndarray, loss_weight: float,
                 out: np.ndarray, check: bool = True) -> None:
        """out[...] = ∂(loss_weight·loss)/∂x for the logits and labels of the last forward,
        recomputed and written once, in float32. out: C-contiguous float32 of the logits' size
        (e.g. Caffe's bottom diff); written in place, never copied.

        check: the pass adds up the inputs' bits as forward did (kernels.STAT_CHECKSUM) and
        InputError is raised if the logits or labels changed since forward (out then holds the
        gradient of the changed ones). False skips it (benchmarks.backward_check measures what
        it costs)."""
        if self.normalizer is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward needs a forward that completed first")
        grad = _flat_view(out, self.size)
        stats = self._stats if check else None
        self._pass(logits, labels, grad, np.float32(loss_weight / self.normalizer), stats)
        if check and _totals(stats)[kernels.STAT_CHECKSUM] != self._forward_checksum:
            raise InputError(CHANGED_SINCE_FORWARD)

    def _pass(self, logits, labels, grad, grad_scale, stats) -> None:
        """The compiled pass over every block, the block ranges split across threads."""
        x, t = _flat(logits), _flat(labels)
        if not self._per_thread:
            # The arrays the kernel writes sit at the logits' offset within a page: when a store
            # lands a little ahead of a later load modulo 4096, the CPU takes the load for a read
            # of the stored data and waits ("4K aliasing"), measured 5× slower here. Made once:
            # a Caffe blob keeps its memory while its shape stays, and a new shape makes a new
            # kernel. Caffe's diff has its own page offset (malloc's choice for small blobs), so
            # backward stages the gradient here and copies it out (kernels._copy_out).
            page_offset = x.ctypes.data % _PAGE
            self._per_thread = [
                (_empty_at_page_offset(page_offset, math.prod(self._scratch_shape))
                 .reshape(self._scratch_shape), first, stop) + self._arguments
                for first, stop in self._ranges]
        head = (x, t, grad, grad_scale, stats)
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
        self._plan(-(-self.size // kernels.BLOCK), kernels.SCRATCH_ROWS, kernels.BLOCK, threads)


def _totals(stats: np.ndarray) -> list:
    """The per-block sums (stats rows) added up in a fixed order. (The checksums are integers
    below 2^32: their float64 total is exact.)"""
    return (stats[0] if len(stats) == 1 else stats.sum(axis=0)).tolist()


CHANGED_SINCE_FORWARD = (
    "bottom[0] (logits) or bottom[1] (labels) changed between this loss layer's forward and its "
    "backward: the gradient would not be that of the loss forward computed. Likely cause: an "
    "in-place layer (ReLU, Dropout, Scale, ...) on a Flatten or Reshape view of the logits, "
    "declared after this loss, rewrites them in between (the view shares their memory; Caffe's "
    "own loss layers keep their forward results, this one keeps nothing the size of the logits). "
    "Fix: declare that layer before the loss, give it a top of its own (not in place), or feed "
    "it a copy of the logits")


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
