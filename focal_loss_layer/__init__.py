"""Sigmoid focal loss (Lin et al. 2017) for Caffe.

    python_param { module: "focal_loss_layer"  layer: "FocalLossLayer" }

The numpy core (core, labels, params) imports without Caffe; FocalLossLayer and netspec are
loaded on first use, since they need pycaffe.
"""
from .core import sigmoid_focal_loss
from .errors import FocalLossError, InputError, ParamError
from .params import FocalLossParams, parse_param_str

__all__ = ["FocalLossLayer", "sigmoid_focal_loss", "FocalLossError", "InputError", "ParamError",
           "FocalLossParams", "parse_param_str"]


def __getattr__(name):
    if name == "FocalLossLayer":
        from .layer import FocalLossLayer
        return FocalLossLayer
    if name == "netspec":
        from . import netspec
        return netspec
    raise AttributeError(f"module 'focal_loss_layer' has no attribute {name!r}")
