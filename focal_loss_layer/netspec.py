"""Writing FocalLossLayer and SoftmaxFocalLossLayer into nets from Python with caffe.NetSpec:

    from caffe import layers as L
    from focal_loss_layer.netspec import focal_loss, softmax_focal_loss
    n.loss = focal_loss(n.score, n.label, focusing_parameter=2, alpha=0.25)
    n.monitor = focal_loss(n.score, n.label, loss_weight=0, include=dict(phase=caffe.TEST))
    n.seg_loss = softmax_focal_loss(n.seg_score, n.seg_label, ignore_label=255)
"""
import json

from caffe import layers as L
from caffe.proto import caffe_pb2

from .errors import ParamError
from .params import SIGMOID, SOFTMAX, LayerSpec, parse_layer_param_str

# LayerParameter fields a caller may set (name, propagate_down, include, exclude, loss_weight,
# param, …); the layer's type, blobs and python_param are this helper's to write.
_LAYER_FIELDS = frozenset(caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name) - {
    "type", "bottom", "top", "python_param"}


def focal_loss(logits, labels, *, loss_weight: float = 1.0, **keywords):
    """A FocalLossLayer top for NetSpec.

    keywords: param_str keys (focusing_parameter, alpha, class_balances, normalization,
    ignore_label, label_smoothing) go into param_str, checked now so that a mistake shows here
    rather than when the net is built; Caffe's own LayerParameter fields (name, propagate_down,
    include, exclude, …) go to the layer as NetSpec writes them for any layer.
    """
    return _python_loss(SIGMOID, logits, labels, loss_weight, keywords)


def softmax_focal_loss(logits, labels, *, loss_weight: float = 1.0, **keywords):
    """A SoftmaxFocalLossLayer top for NetSpec, the drop-in for L.SoftmaxWithLoss.

    keywords: param_str keys (focusing_parameter, alpha, class_balances, normalization,
    ignore_label) go into param_str, checked now; Caffe's LayerParameter fields go to the layer,
    as in focal_loss.
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
    settings = {k: v for k, v in keywords.items() if k in spec.keys or k not in _LAYER_FIELDS}
    layer_fields = {k: v for k, v in keywords.items() if k not in settings}
    param_str = json.dumps(settings, sort_keys=True)
    parse_layer_param_str(param_str, spec)   # unknown keys fail here, with a "did you mean"
    return L.Python(logits, labels, loss_weight=loss_weight, **layer_fields,
                    python_param=dict(module="focal_loss_layer", layer=spec.layer,
                                      param_str=param_str))
