"""Focal loss (Lin et al. 2017) for Caffe, sigmoid and softmax forms.

    python_param { module: "focal_loss_layer"  layer: "FocalLossLayer" }
    python_param { module: "focal_loss_layer"  layer: "SoftmaxFocalLossLayer" }
    python_param { module: "focal_loss_layer"  layer: "MultiBoxFocalLossLayer" }   (SSD)

The numpy cores (core, softmax_core, labels, params) import without Caffe; the layers and netspec
are loaded on first use, since they need pycaffe (without it, an ImportError says what is needed:
focal_loss_layer.pycaffe). Caffe's Python layer looks the class up by name on this module, which
this module's __getattr__ answers. `python -m focal_loss_layer.check` certifies the layers in the
Caffe that is importable.
"""
from .core import sigmoid_focal_loss, sigmoid_focal_loss_and_gradient
from .errors import FocalLossError, InputError, ParamError
from .params import FocalLossParams, SoftmaxFocalLossParams, parse_param_str, parse_softmax_param_str
from .softmax_core import softmax_focal_loss, softmax_focal_loss_and_gradient

__version__ = "0.1.0"   # the one place the version is written (setup.py reads it from here)

__all__ = ["__version__", "FocalLossLayer", "SoftmaxFocalLossLayer", "MultiBoxFocalLossLayer",
           "sigmoid_focal_loss_and_gradient", "softmax_focal_loss_and_gradient", "FocalLossError",
           "InputError", "ParamError",
           "FocalLossParams", "SoftmaxFocalLossParams", "parse_param_str", "parse_softmax_param_str",
           # deprecated (focal_loss_layer.deprecation): warn when called
           "sigmoid_focal_loss", "softmax_focal_loss"]


def __getattr__(name):
    """The pycaffe-bound parts, imported on first use (Caffe's Python layer finds the layer
    classes here by name). Without pycaffe they raise focal_loss_layer.pycaffe.PycaffeMissing."""
    if name == "FocalLossLayer":
        from .layer import FocalLossLayer
        return FocalLossLayer
    if name == "SoftmaxFocalLossLayer":
        from .softmax_layer import SoftmaxFocalLossLayer
        return SoftmaxFocalLossLayer
    if name == "MultiBoxFocalLossLayer":
        from .multibox_layer import MultiBoxFocalLossLayer
        return MultiBoxFocalLossLayer
    if name == "netspec":
        # import_module, not `from . import netspec`: that form asks this __getattr__ again
        # while the submodule is not yet set, and recursed without end when the import failed.
        import importlib
        return importlib.import_module(f"{__name__}.netspec")
    raise AttributeError(f"module 'focal_loss_layer' has no attribute {name!r}")
