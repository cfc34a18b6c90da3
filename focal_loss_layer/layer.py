"""FocalLossLayer: the Caffe glue. Parses param_str once, checks the blobs, and runs the fast path
(focal_loss_layer.fast: one compiled pass for loss and gradient; the numpy core is its reference).
Declared in a prototxt as

    layer { type: "Python"  bottom: "score"  bottom: "label"  top: "loss"
            python_param { module: "focal_loss_layer"  layer: "FocalLossLayer"
                           param_str: "{'focusing_parameter': 2, 'alpha': 0.25}" }
            loss_weight: 1 }

bottom[0]: logits (N, C, *spatial); bottom[1]: labels, per-class targets (same shape) or class
indices ((N, *spatial) or (N, 1, *spatial)); top[0]: the scalar loss, shape (1,).

Memory: none the size of the logits. Forward writes the gradient straight into bottom[0].diff,
where backward scales it in place by loss_weight / normalizer (focal_loss_layer.fast).
"""
import caffe

from .errors import InputError
from .fast import FocalLossKernel
from .labels import label_form
from .params import parse_param_str


class FocalLossLayer(caffe.Layer):
    """Sigmoid focal loss (Lin et al. 2017); see focal_loss_layer.core for the formulas."""

    def setup(self, bottom, top):
        if len(bottom) != 2 or len(top) != 1:
            raise InputError(f"FocalLossLayer takes 2 bottoms (logits, labels) and 1 top (loss); "
                             f"got {len(bottom)} bottom(s) and {len(top)} top(s)")
        self.params = parse_param_str(self.param_str)
        self.class_weights = None
        self.kernel = None          # FocalLossKernel for the current blob shapes
        # True from a forward until the backward that scales the gradient it left in
        # bottom[0].diff. A second backward after one forward finds it False and recomputes:
        # upstream in-place layers may have rewritten that diff in the meantime.
        self.diff_holds_gradient = False

    def reshape(self, bottom, top):
        shapes = (bottom[0].data.shape, bottom[1].data.shape)
        if self.kernel is None or self.kernel.shapes != shapes:
            label_form(*shapes)
            num_classes = shapes[0][1]
            # Checked here, not in setup, so that a class-count change between nets is caught too.
            if self.class_weights is None or len(self.class_weights) != num_classes:
                self.class_weights = self.params.class_weights(num_classes)
            self.kernel = FocalLossKernel(self.params, self.class_weights, *shapes)
        top[0].reshape(1)

    def forward(self, bottom, top):
        # Nothing reads a bottom's diff between a loss layer's forward and its backward (Caffe
        # gives each consumer of a blob its own copy through a Split layer), so the gradient
        # waits there instead of in a buffer of the logits' size.
        self.diff_holds_gradient = False   # until the pass below completes without an error
        top[0].data[...] = self.kernel.forward(bottom[0].data, bottom[1].data, bottom[0].diff)
        self.diff_holds_gradient = True

    def backward(self, top, propagate_down, bottom):
        # top[0].diff[0] is the loss_weight Caffe assigns: honour it.
        if propagate_down[0]:
            if not self.diff_holds_gradient:
                self.kernel.forward(bottom[0].data, bottom[1].data, bottom[0].diff)
            self.kernel.backward(top[0].diff[0].item(), bottom[0].diff)
            self.diff_holds_gradient = False
        # Labels take no gradient. Caffe asks for one anyway under force_backward (a Python
        # layer cannot refuse it as C++ loss layers do): answer with zeros, not an error.
        if len(propagate_down) > 1 and propagate_down[1]:
            bottom[1].diff[...] = 0
