"""Importing pycaffe (Caffe's `caffe` Python module), with an error that says how to get it.

pycaffe is not on PyPI: it is the `python/` folder of a Caffe build. The layers and netspec need
it; the numpy cores do not. Without it, touching a layer raises PycaffeMissing (an ImportError)
that names the two things a Caffe must give: the build setting `WITH_PYTHON_LAYER := 1` and its
`python/` folder on `PYTHONPATH`.
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
