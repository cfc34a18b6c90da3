"""The fast path of SoftmaxFocalLossLayer: the compiled pass (focal_loss_layer.kernels.softmax_pass)
over blocks of positions, on fast.BlockedKernel's threads, scratch, checks and kept gradient.

    kernel = SoftmaxFocalLossKernel(params, logits_shape, labels_shape)
    loss = kernel.forward(logits, labels)       # the loss; keeps its gradient (input checks)
    kernel.backward(loss_weight, out)           # out = ∂(loss_weight·loss)/∂x, a scaled copy

logits: (N, C, *spatial) float32; labels: (N, *spatial) or (N, 1, *spatial) class indices 0..C−1
or ignore_label; out: C-contiguous float32 of the logits' size (Caffe's bottom diff). The results
equal focal_loss_layer.softmax_core.softmax_focal_loss_and_gradient's to float32 rounding
(tests/test_softmax_fast.py); bad inputs raise the same InputError messages as
labels.check_labels and fast.check_finite.

Memory: the kept gradient, one float32 buffer the size of the logits (it also holds the
e^{x − m} between the pass's loops), and per thread a scratch of SOFTMAX_SCRATCH_ROWS ×
SOFTMAX_BLOCK floats (88 KB).
"""
import math
from typing import Optional, Tuple

import numpy as np

from . import kernels
from .fast import BlockedKernel, gamma_arguments, gradient_bound, ignore_arguments
from .labels import CLASSES, check_class_label_shape
from .params import SoftmaxFocalLossParams


class SoftmaxFocalLossKernel(BlockedKernel):
    """The softmax fast path for one layer's settings and one pair of blob shapes; threads as in
    fast.FocalLossKernel (the results do not depend on it)."""

    def __init__(self, params: SoftmaxFocalLossParams, logits_shape: Tuple[int, ...],
                 labels_shape: Tuple[int, ...], threads: Optional[int] = None):
        self.params = params
        self.logits_shape = tuple(logits_shape)
        self.shapes = (self.logits_shape, tuple(labels_shape))
        check_class_label_shape(self.logits_shape, labels_shape)
        self.form = CLASSES
        self.num_classes = num_classes = self.logits_shape[1]
        # 'full' and 'batch_size' count positions (N·S) and samples (N), as SoftmaxWithLoss.
        self.counts_shape = self.logits_shape[:1] + self.logits_shape[2:]
        self.size = math.prod(self.logits_shape)
        weights = params.class_weights(num_classes)
        if params.alpha is not None:
            weights = weights * np.where(np.arange(num_classes) == 0, 1.0 - params.alpha,
                                         params.alpha)
        self.gradient_bound = gradient_bound(weights, params.focusing_parameter)
        self._pass_function = kernels.softmax_pass
        block = kernels.softmax_block_positions(num_classes)
        self._arguments = (block, weights.astype(np.float32), num_classes,
                           math.prod(self.logits_shape[2:]),
                           *gamma_arguments(params.focusing_parameter),
                           *ignore_arguments(params.ignore_label))
        positions = math.prod(self.counts_shape)
        # Scratch rows hold a block's positions, or (kernels._rows) one row's C classes.
        self._plan(max(1, -(-positions // block)), kernels.SOFTMAX_SCRATCH_ROWS,
                   max(kernels.SOFTMAX_BLOCK, num_classes), threads)
