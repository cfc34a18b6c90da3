"""FocalLossLayer: the Caffe glue. Parses param_str once, checks the blobs, and runs the fast path
(focal_loss_layer.fast: one compiled pass for loss and gradient; the numpy core is its reference).
Declared in a prototxt as

    layer { type: "Python"  bottom: "score"  bottom: "label"  top: "loss"
            python_param { module: "focal_loss_layer"  layer: "FocalLossLayer"
                           param_str: "{'focusing_parameter': 2, 'alpha': 0.25}" }
            loss_weight: 1 }

bottom[0]: logits (N, C, *spatial), or (N, A·C, *spatial) with num_anchors A; bottom[1]: labels,
per-class targets (same shape) or class indices ((N, *spatial) or (N, 1, *spatial); (N, A,
*spatial) with anchors); optional bottom[2]: one value, the loss's divisor (as max(value, 1)),
e.g. the number of positive anchors over all FPN levels; top[0]: the scalar loss, shape (1,).

The diff contract of Caffe's own loss layers: forward and reshape write no diff; backward writes
bottom[0].diff only when propagate_down[0] (and zeros into bottom[1].diff only when Caffe asks
for a label gradient, under force_backward). A loss whose backward Caffe skips (loss_weight 0 or
none, propagate_down: false, logits that need no gradient, a TEST net) therefore adds nothing to
what Caffe's Split layers sum into the weights. reshape reads only shapes (blob.shape), never
.data or .diff, which in GPU-mode Caffe copy the blob to the host.

Exact by construction, as Caffe's own losses: forward computes the loss and its gradient in one
pass and keeps the gradient (in a float32 buffer the size of the logits, the kernel's, made in
reshape); backward writes it, scaled by loss_weight / normalizer, into bottom[0].diff and reads
no bottom data, so it is forward's gradient whatever rewrites the logits in between
(focal_loss_layer.fast). Memory: that buffer, one per layer, as SigmoidCrossEntropyLoss's
sigmoid_output_ or SoftmaxWithLoss's prob_.

KernelLossLayer holds the Caffe glue that FocalLossLayer and SoftmaxFocalLossLayer
(focal_loss_layer.softmax_layer) share: reshape, forward, backward and the contract above.
"""
import math

from .errors import InputError, ParamError
from .fast import FocalLossKernel
from .params import parse_param_str
from .pycaffe import import_caffe, layer_param_str

caffe = import_caffe("FocalLossLayer and SoftmaxFocalLossLayer")


def blob_shape(blob) -> tuple:
    """A blob's shape, read from its shape vector, never from .data (which in GPU mode copies the
    blob to the host). Indexed rather than iterated: iterating pycaffe's IntVec takes ~3 µs, and
    Caffe calls reshape before every forward."""
    shape = blob.shape
    return tuple([shape[i] for i in range(len(shape))])


class KernelLossLayer(caffe.Layer):
    """A loss layer run by a fast-path kernel (fast.BlockedKernel): KERNEL(params, logits shape,
    labels shape). A subclass's setup sets self.params, self.has_normalizer_bottom and
    self.kernel = None."""

    KERNEL = None

    def reshape(self, bottom, top):
        shapes = (blob_shape(bottom[0]), blob_shape(bottom[1]))
        if self.kernel is None or self.kernel.shapes != shapes:
            self.kernel = self.KERNEL(self.params, *shapes)
        if self.has_normalizer_bottom and bottom[2].count != 1:
            raise InputError(f"bottom[2] (normalizer) has shape {blob_shape(bottom[2])}; it must "
                             "hold exactly one value (e.g. the top of a Reduction SUM)")
        top[0].reshape(1)

    def forward(self, bottom, top):
        top[0].data[...] = self.kernel.forward(bottom[0].data, bottom[1].data,
                                               self._normalizer(bottom))

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            # top[0].diff[0] is the loss_weight Caffe assigns: honour it.
            self.kernel.backward(top[0].diff[0].item(), bottom[0].diff)
        # Labels and the normalizer take no gradient. Caffe asks for one anyway under
        # force_backward (a Python layer cannot refuse it as C++ loss layers do): answer with
        # zeros, not an error.
        for k in range(1, len(bottom)):
            if propagate_down[k]:
                bottom[k].diff[...] = 0

    def _normalizer(self, bottom):
        """bottom[2]'s value, or None without a third bottom. InputError unless finite and >= 0."""
        if not self.has_normalizer_bottom:
            return None
        value = bottom[2].data.reshape(-1)[0].item()
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"bottom[2] (normalizer) is {value!r}; it must be a finite number "
                             ">= 0, such as a count of positive anchors (the loss is divided by "
                             "max(value, 1))")
        return value


class FocalLossLayer(KernelLossLayer):
    """Sigmoid focal loss (Lin et al. 2017); see focal_loss_layer.core for the formulas."""

    KERNEL = FocalLossKernel

    def setup(self, bottom, top):
        if len(bottom) not in (2, 3) or len(top) != 1:
            raise InputError(
                f"FocalLossLayer takes 2 or 3 bottoms (logits, labels[, normalizer]) and 1 top "
                f"(loss); got {len(bottom)} bottom(s) and {len(top)} top(s)")
        self.params = parse_param_str(layer_param_str(self))
        self.has_normalizer_bottom = len(bottom) == 3
        if self.has_normalizer_bottom and self.params.normalization_given:
            raise ParamError(
                f"normalization = {self.params.normalization!r} is not allowed with a third "
                "bottom: the loss is divided by max(bottom[2], 1); drop one of the two")
        self.kernel = None          # FocalLossKernel for the current blob shapes
