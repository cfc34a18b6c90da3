"""FocalLossLayer: the Caffe glue. Parses param_str once, checks the blobs, and hands arrays to
the numpy core. Declared in a prototxt as

    layer { type: "Python"  bottom: "score"  bottom: "label"  top: "loss"
            python_param { module: "focal_loss_layer"  layer: "FocalLossLayer"
                           param_str: "{'focusing_parameter': 2, 'alpha': 0.25}" }
            loss_weight: 1 }

bottom[0]: logits (N, C, *spatial); bottom[1]: labels, per-class targets (same shape) or class
indices ((N, *spatial) or (N, 1, *spatial)); top[0]: the scalar loss, shape (1,).
"""
import caffe
import numpy as np

from .core import sigmoid_focal_loss
from .errors import InputError
from .labels import label_form, read_labels
from .params import parse_param_str


class FocalLossLayer(caffe.Layer):
    """Sigmoid focal loss (Lin et al. 2017); see focal_loss_layer.core for the formulas."""

    def setup(self, bottom, top):
        if len(bottom) != 2 or len(top) != 1:
            raise InputError(f"FocalLossLayer takes 2 bottoms (logits, labels) and 1 top (loss); "
                             f"got {len(bottom)} bottom(s) and {len(top)} top(s)")
        self.params = parse_param_str(self.param_str)
        self.class_weights = None
        self.grad = None

    def reshape(self, bottom, top):
        logits_shape = bottom[0].data.shape
        label_form(logits_shape, bottom[1].data.shape)
        num_classes = logits_shape[1]
        # Checked here, not in setup, so that a class-count change between nets is caught too.
        if self.class_weights is None or len(self.class_weights) != num_classes:
            self.class_weights = self.params.class_weights(num_classes)
        top[0].reshape(1)

    def forward(self, bottom, top):
        logits = bottom[0].data
        _check_finite(logits)
        labels = read_labels(bottom[1].data, logits.shape, self.params.ignore_label)
        p = self.params
        loss, self.grad = sigmoid_focal_loss(
            logits, labels.targets, focusing_parameter=p.focusing_parameter, alpha=p.alpha,
            class_weights=self.class_weights, valid=labels.valid,
            label_smoothing=p.label_smoothing, normalization=p.normalization)
        top[0].data[...] = loss

    def backward(self, top, propagate_down, bottom):
        # top[0].diff[0] is the loss_weight Caffe assigns: honour it.
        if propagate_down[0]:
            np.multiply(self.grad, top[0].diff[0], out=bottom[0].diff)
        # Labels take no gradient. Caffe asks for one anyway under force_backward (a Python
        # layer cannot refuse it as C++ loss layers do): answer with zeros, not an error.
        if len(propagate_down) > 1 and propagate_down[1]:
            bottom[1].diff[...] = 0


def _check_finite(logits: np.ndarray) -> None:
    finite = np.isfinite(logits)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise InputError(
            f"bottom[0] (logits) holds {logits.size - np.count_nonzero(finite)} non-finite "
            f"value(s) (NaN or ±inf); the first is {logits[where].item()} at index {where}. The net "
            "diverged or its input holds NaN: lower base_lr, clip gradients, or check the data")
