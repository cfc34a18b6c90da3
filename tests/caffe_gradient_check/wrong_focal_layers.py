"""Deliberately wrong variants of FocalLossLayer: the gradient check must fail on them
(tests/test_caffe_gradient_checker.py). Their forward is the real one; only backward is broken,
and only by wrapping the real backward, so they stay wrong however the real layer computes."""
from focal_loss_layer.layer import FocalLossLayer


class IgnoresLossWeight(FocalLossLayer):
    """Backward as if top[0].diff were 1, dropping the loss_weight Caffe puts there: the bug of
    Caffe's own examples/pycaffe/layers/pyloss.py."""

    def backward(self, top, propagate_down, bottom):
        top[0].diff[...] = 1
        super().backward(top, propagate_down, bottom)


class GradientTenPercentHigh(FocalLossLayer):
    """The right gradient times 1.1: an error of the size a slipped constant makes."""

    def backward(self, top, propagate_down, bottom):
        super().backward(top, propagate_down, bottom)
        bottom[0].diff[...] *= 1.1
