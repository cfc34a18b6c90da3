"""Writing FocalLossLayer into nets from Python with caffe.NetSpec:

    from caffe import layers as L
    from focal_loss_layer.netspec import focal_loss
    n.loss = focal_loss(n.score, n.label, focusing_parameter=2, alpha=0.25)
"""
import json

from caffe import layers as L

from .params import parse_param_str


def focal_loss(logits, labels, *, loss_weight: float = 1.0, **settings):
    """A FocalLossLayer top for NetSpec. settings are param_str keys (focusing_parameter,
    alpha, class_balances, normalization, ignore_label, label_smoothing); they are checked now,
    so a mistake shows here rather than when the net is built."""
    param_str = json.dumps(settings, sort_keys=True)
    parse_param_str(param_str)
    return L.Python(logits, labels, loss_weight=loss_weight,
                    python_param=dict(module="focal_loss_layer", layer="FocalLossLayer",
                                      param_str=param_str))
