"""Importing pycaffe (Caffe's `caffe` Python module), with an error that says how to get it, and
reading what Caffe hands a Python layer in forks that spell it differently.

pycaffe is not on PyPI: it is the `python/` folder of a Caffe build. The layers and netspec need
it; the numpy cores do not. Without it, touching a layer raises PycaffeMissing (an ImportError)
that names the two things a Caffe must give: the build setting `WITH_PYTHON_LAYER := 1` and its
`python/` folder on `PYTHONPATH`. layer_param_str reads a layer's param_str under either of the
two names Caffes give it (`param_str`, or `param_str_` in py-faster-rcnn's caffe-fast-rcnn).
"""
import importlib

TO_DO = (
    "Build Caffe with `WITH_PYTHON_LAYER := 1` in its Makefile.config (CMake: "
    "-DBUILD_python_layer=ON), run `make pycaffe`, and put that build's python/ folder on "
    "PYTHONPATH: export PYTHONPATH=/path/to/caffe/python:$PYTHONPATH")


class PycaffeMissing(ImportError):
    """pycaffe cannot be imported; the message says what is needed."""


def import_caffe(what: str = "focal_loss_layer's Caffe layers"):
    """The `caffe` module, or PycaffeMissing naming what needed it, why the import failed and
    what to do."""
    try:
        return importlib.import_module("caffe")
    except ImportError as error:
        missing = getattr(error, "name", None)
        if missing and missing != "caffe" and not missing.startswith("caffe."):
            # pycaffe was found but one of its own imports failed.
            raise PycaffeMissing(
                f"{what} need pycaffe, which was found but failed to import: {error}. Install "
                "pycaffe's runtime packages (numpy, protobuf, six, scipy, scikit-image) into this "
                f"Python. (pycaffe itself: {TO_DO}.)") from error
        raise PycaffeMissing(f"{what} need pycaffe, which this Python cannot import ({error}). "
                             f"{TO_DO}") from error


def layer_param_str(layer) -> str:
    """The prototxt's `python_param { param_str }` of a Python layer, whichever Caffe made it.

    Caffe's PythonLayer sets the string on the layer object just before calling setup, under a
    name that depends on the fork: BVLC Caffe and the SSD fork (this project's brocolli-caffe)
    set `layer.param_str`; py-faster-rcnn's caffe-fast-rcnn, at the commit py-faster-rcnn pins
    (0dcd397b), renames it `layer.param_str_` (include/caffe/layers/python_layer.hpp, which is why
    py-faster-rcnn's own layers read `self.param_str_`). Reading only `param_str` there raises
    AttributeError in setup, so every layer's setup reads it through this function.

    Returns `layer.param_str` if the layer has it, else `layer.param_str_` if it has that, else ""
    (a layer object made outside Caffe; the settings' defaults then apply, as for an empty
    param_str)."""
    for name in ("param_str", "param_str_"):
        value = getattr(layer, name, None)
        if value is not None:
            return value
    return ""
