"""SoftmaxFocalLossLayer: the softmax form of focal loss, a drop-in for Caffe's SoftmaxWithLoss.

    layer { type: "Python"  bottom: "score"  bottom: "label"  top: "loss"
            python_param { module: "focal_loss_layer"  layer: "SoftmaxFocalLossLayer"
                           param_str: "{'focusing_parameter': 2, 'ignore_label': 255}" }
            loss_weight: 1 }

bottom[0]: logits (N, C, *spatial), the softmax over axis 1; bottom[1]: labels (N, *spatial) or
(N, 1, *spatial), class indices 0..C−1 or ignore_label (SoftmaxWithLoss's convention); top[0]:
the scalar loss, shape (1,). Formulas: focal_loss_layer.softmax_core. Settings: params.SOFTMAX
(focusing_parameter, alpha, class_balances, ignore_label, normalization: valid by default, as
SoftmaxWithLoss). At focusing_parameter 0 with no weights it is SoftmaxWithLoss, loss and
gradient (tests/test_layers.py).

The Caffe glue, and with it the diff contract (forward and reshape write no diff; backward
writes bottom[0].diff only when propagate_down[0], zeros into bottom[1].diff only when Caffe asks
for a label gradient), is layer.KernelLossLayer's, shared with FocalLossLayer; the fast path is
focal_loss_layer.softmax_fast.
"""
from .errors import InputError
from .layer import KernelLossLayer
from .params import parse_softmax_param_str
from .pycaffe import layer_param_str
from .softmax_fast import SoftmaxFocalLossKernel


class SoftmaxFocalLossLayer(KernelLossLayer):
    """Softmax focal loss: −w_y·a_y·(1 − p_y)^γ·log p_y per position, p = softmax over axis 1."""

    KERNEL = SoftmaxFocalLossKernel

    def setup(self, bottom, top):
        if len(bottom) != 2 or len(top) != 1:
            raise InputError(
                f"SoftmaxFocalLossLayer takes 2 bottoms (logits, labels) and 1 top (loss); got "
                f"{len(bottom)} bottom(s) and {len(top)} top(s)")
        self.params = parse_softmax_param_str(layer_param_str(self))
        self.has_normalizer_bottom = False
        self.kernel = None          # SoftmaxFocalLossKernel for the current blob shapes
