"""Without pycaffe: the numpy cores import and work; the layers, netspec and the layer module
raise an ImportError that names `WITH_PYTHON_LAYER := 1` and `PYTHONPATH`. With pycaffe found but
one of its own imports missing, the error names that package. Each runs in a child Python of
this venv whose sys.path has pycaffe's folder taken out (as a user's Python without PYTHONPATH)."""
import json
import os
import sys
import textwrap

import caffe
import pytest
from installs import clean_env, run

PYCAFFE_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(caffe.__file__)))

SCRIPT = textwrap.dedent('''
    import json, sys
    sys.path = [p for p in sys.path if p != {folder!r}]
    {setup}
    import numpy as np
    import focal_loss_layer
    from focal_loss_layer.core import sigmoid_focal_loss_and_gradient
    loss, grad = sigmoid_focal_loss_and_gradient(np.zeros((2, 3)), np.zeros((2, 3)), focusing_parameter=0)
    try:
        {touch}
        error = None
    except ImportError as e:
        error = [type(e).__name__, str(e)]
    print(json.dumps({{"loss": loss, "error": error, "caffe_loaded": "caffe" in sys.modules,
                      "version": focal_loss_layer.__version__}}))
''')


def without_pycaffe(touch, setup=""):
    script = SCRIPT.format(folder=PYCAFFE_FOLDER, setup=setup, touch=touch)
    done = run([sys.executable, "-c", script], env=clean_env(), cwd="/")
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("touch", [
    "focal_loss_layer.FocalLossLayer",
    "focal_loss_layer.SoftmaxFocalLossLayer",
    "focal_loss_layer.netspec",
    "import focal_loss_layer.layer",
    "from focal_loss_layer.netspec import sigmoid_focal_loss_layer",
    "from focal_loss_layer import SoftmaxFocalLossLayer",
])
def test_touching_a_layer_without_pycaffe_names_what_is_needed(touch):
    result = without_pycaffe(touch)
    # The core worked: sigmoid cross-entropy of 0 logits is 3·log 2 per sample, / N = 2.
    assert result["loss"] == pytest.approx(3 * 0.6931471805599453)
    assert not result["caffe_loaded"]
    kind, message = result["error"]
    assert kind == "PycaffeMissing"
    assert "`WITH_PYTHON_LAYER := 1`" in message and "PYTHONPATH" in message
    assert "No module named 'caffe'" in message


def test_pycaffe_found_but_its_package_missing_names_the_package():
    # scikit-image made unimportable (caffe/io.py imports it): pycaffe's folder stays on the path.
    script_setup = f"sys.path.append({PYCAFFE_FOLDER!r}); sys.modules['skimage'] = None"
    result = without_pycaffe("focal_loss_layer.FocalLossLayer", setup=script_setup)
    kind, message = result["error"]
    assert kind == "PycaffeMissing"
    assert "found but failed to import" in message and "skimage" in message
    assert "scikit-image" in message


def test_version_is_the_one_in_the_package():
    import focal_loss_layer
    assert without_pycaffe("pass")["version"] == focal_loss_layer.__version__
    assert focal_loss_layer.__version__.count(".") == 2


def test_with_pycaffe_the_lazy_attributes_resolve_in_a_fresh_process():
    # `focal_loss_layer.netspec` recursed without end before (`from . import netspec` inside
    # the module's __getattr__ asks __getattr__ again).
    script = ("import focal_loss_layer as f; print(f.netspec.focal_loss.__name__, "
              "f.FocalLossLayer.__name__, f.SoftmaxFocalLossLayer.__name__)")
    done = run([sys.executable, "-c", script], env=clean_env(), cwd="/")
    assert done.stdout.split() == ["focal_loss", "FocalLossLayer", "SoftmaxFocalLossLayer"]
