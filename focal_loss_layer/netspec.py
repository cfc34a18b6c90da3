"""Writing FocalLossLayer and SoftmaxFocalLossLayer into nets from Python with caffe.NetSpec:

    from caffe import layers as L
    from focal_loss_layer.netspec import sigmoid_focal_loss_layer, softmax_focal_loss_layer
    n.loss = sigmoid_focal_loss_layer(n.score, n.label, focusing_parameter=2, alpha=0.25)
    n.monitor = sigmoid_focal_loss_layer(n.score, n.label, loss_weight=0,
                                         include=dict(phase=caffe.TEST))
    n.seg_loss = softmax_focal_loss_layer(n.seg_score, n.seg_label, ignore_label=255)

Each function adds one Python layer and returns its top (the loss), as NetSpec's L.* do.

Settings may be numpy values: class_balances=balances.class_balances(counts) (an ndarray),
alpha=np.float32(0.25); they are written into param_str as the Python numbers they hold.
"""
import json

import numpy as np

from .deprecation import deprecated_alias
from .errors import ParamError
from .params import SIGMOID, SOFTMAX, LayerSpec, parse_layer_param_str, parse_layer_settings
from .pycaffe import import_caffe

caffe = import_caffe("focal_loss_layer.netspec's helpers")
L = caffe.layers
caffe_pb2 = caffe.proto.caffe_pb2

# LayerParameter fields a caller may set (name, propagate_down, include, exclude, loss_weight,
# param, …); the layer's type, blobs and python_param are this helper's to write.
_LAYER_FIELDS = frozenset(caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name) - {
    "type", "bottom", "top", "python_param"}


def sigmoid_focal_loss_layer(logits, labels, *, loss_weight: float = 1.0, **keywords):
    """A FocalLossLayer for NetSpec; returns its top, the loss.

    keywords: param_str keys (focusing_parameter, alpha, class_balances, normalization,
    ignore_label, label_smoothing, num_anchors) go into param_str, checked now so that a mistake shows here
    rather than when the net is built; Caffe's own LayerParameter fields (name, propagate_down,
    include, exclude, …) go to the layer as NetSpec writes them for any layer.
    """
    return _python_loss(SIGMOID, logits, labels, loss_weight, keywords)


def softmax_focal_loss_layer(logits, labels, *, loss_weight: float = 1.0, **keywords):
    """A SoftmaxFocalLossLayer for NetSpec, the drop-in for L.SoftmaxWithLoss; returns its top.

    keywords: param_str keys (focusing_parameter, alpha, class_balances, normalization,
    ignore_label) go into param_str, checked now; Caffe's LayerParameter fields go to the layer,
    as in sigmoid_focal_loss_layer.
    """
    return _python_loss(SOFTMAX, logits, labels, loss_weight, keywords)


def _python_loss(spec: LayerSpec, logits, labels, loss_weight, keywords):
    """The Python layer spec.layer: keywords split into param_str settings (checked against
    spec) and Caffe's own layer fields."""
    if "loss_param" in keywords:
        raise ParamError(
            "loss_param is not allowed: a Python layer sees only its param_str, so Caffe's "
            "loss_param { normalization, ignore_label } would be silently ignored; pass "
            "normalization=... and ignore_label=... as keywords instead")
    settings = {k: _plain(v) for k, v in keywords.items()
                if k in spec.keys or k not in _LAYER_FIELDS}
    layer_fields = {k: v for k, v in keywords.items() if k not in settings}
    # Checked as given (unknown keys fail here, with a "did you mean"; {1: 2, '1': 3} names
    # class 1 twice), then once more as the layer will read the text.
    parse_layer_settings(settings, spec)
    param_str = json.dumps(_string_keys(settings), sort_keys=True)
    parse_layer_param_str(param_str, spec)
    return L.Python(logits, labels, loss_weight=loss_weight, **layer_fields,
                    python_param=dict(module="focal_loss_layer", layer=spec.layer,
                                      param_str=param_str))


def _plain(value):
    """value with numpy scalars and arrays replaced by the Python numbers and lists they hold
    (np.float32(0.25) -> 0.25, array([1., 2.]) -> [1.0, 2.0]), which json can write."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _string_keys(value):
    """Dict keys as strings, as JSON writes them (class id 2 -> '2', which the layer reads as
    class 2); done here so that sort_keys never compares an int with a str."""
    if isinstance(value, dict):
        return {str(k): _string_keys(v) for k, v in value.items()}
    return value


# The names before 0.2: they read as the loss functions of the numpy cores (and the sigmoid one
# lacked its "sigmoid").
focal_loss = deprecated_alias(sigmoid_focal_loss_layer, "focal_loss_layer.netspec", "focal_loss")
softmax_focal_loss = deprecated_alias(softmax_focal_loss_layer, "focal_loss_layer.netspec",
                                      "softmax_focal_loss")
