"""Without pycaffe: the numpy cores import and work; the layers, netspec and the layer module
raise an ImportError that names `WITH_PYTHON_LAYER := 1` and `PYTHONPATH`. With pycaffe found but
one of its own imports missing, the error names that package. Each runs in a child Python of
this venv whose sys.path has pycaffe's folder taken out (as a user's Python without PYTHONPATH).

layer_param_str: a layer's settings under either name a Caffe gives them, `param_str` (BVLC, SSD,
this Caffe) or `param_str_` (py-faster-rcnn's caffe-fast-rcnn); the fork's way is reproduced in a
real caffe.Net by a subclass on which Caffe's assignment to `param_str` lands in `param_str_`."""
import json
import os
import sys
import textwrap

import caffe
import numpy as np
import pytest
from installs import clean_env, run

from focal_loss_layer.core import sigmoid_focal_loss_and_gradient
from focal_loss_layer.pycaffe import layer_param_str
from focal_loss_layer.softmax_core import softmax_focal_loss_and_gradient

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


class Attributes:
    """A plain object with the given attributes: layer_param_str is pure Python."""

    def __init__(self, **attributes):
        self.__dict__.update(attributes)


def test_layer_param_str_reads_param_str_as_bvlc_and_ssd_caffe_set_it():
    assert layer_param_str(Attributes(param_str="{'alpha': 0.25}")) == "{'alpha': 0.25}"


def test_layer_param_str_reads_param_str_underscore_as_caffe_fast_rcnn_sets_it():
    assert layer_param_str(Attributes(param_str_="{'alpha': 0.25}")) == "{'alpha': 0.25}"


def test_layer_param_str_takes_param_str_when_a_layer_has_both():
    # An empty param_str is present: the settings are the defaults, not the other name's.
    assert layer_param_str(Attributes(param_str="{'a': 1}", param_str_="{'b': 2}")) == "{'a': 1}"
    assert layer_param_str(Attributes(param_str="", param_str_="{'b': 2}")) == ""


def test_layer_param_str_is_empty_without_either_name():
    assert layer_param_str(Attributes()) == ""


# What caffe-fast-rcnn's PythonLayer::LayerSetUp does: `self_.attr("param_str_") = ...` before
# setup, and no `param_str`. Caffe here assigns `param_str`; the property below turns that
# assignment into `param_str_` and hides `param_str`, so setup sees what it would see in the fork.
FORK_MODULE = textwrap.dedent('''
    import focal_loss_layer


    class OnlyParamStrUnderscore:
        @property
        def param_str(self):
            raise AttributeError("caffe-fast-rcnn sets param_str_, not param_str")

        @param_str.setter
        def param_str(self, text):
            self.param_str_ = text


    class FocalLossLayer(OnlyParamStrUnderscore, focal_loss_layer.FocalLossLayer):
        pass


    class SoftmaxFocalLossLayer(OnlyParamStrUnderscore, focal_loss_layer.SoftmaxFocalLossLayer):
        pass
''')

FORK_SETTINGS = {
    # Settings that change the loss from the defaults (the sigmoid layer's: γ 2, no alpha,
    # batch_size; the softmax layer's: γ 2, valid, no ignore_label, which would refuse label -1).
    "FocalLossLayer": "{'focusing_parameter': 1, 'alpha': 0.25, 'normalization': 'valid'}",
    "SoftmaxFocalLossLayer": "{'focusing_parameter': 1, 'ignore_label': -1}",
}


def dims(shape) -> str:
    return " ".join(f"dim: {d}" for d in shape)


def fork_style_net(tmp_path, monkeypatch, layer, logits_shape, labels_shape):
    """A net whose loss is `layer` from FORK_MODULE; the logits are a Parameter blob, so backward
    reaches them without force_backward."""
    (tmp_path / "fork_style_layers.py").write_text(FORK_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    text = (
        f'layer {{ name: "score" type: "Parameter" top: "score" '
        f'parameter_param {{ shape {{ {dims(logits_shape)} }} }} }}\n'
        f'layer {{ name: "label" type: "Input" top: "label" '
        f'input_param {{ shape {{ {dims(labels_shape)} }} }} }}\n'
        f'layer {{ name: "loss" type: "Python" bottom: "score" bottom: "label" top: "loss" '
        f'python_param {{ module: "fork_style_layers" layer: "{layer}" '
        f'param_str: "{FORK_SETTINGS[layer]}" }} loss_weight: 1 propagate_down: true '
        f'propagate_down: false }}\n')
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    caffe.set_mode_cpu()
    return caffe.Net(str(path), caffe.TRAIN)


def run_once(net, logits, labels):
    """(loss, gradient of the loss with respect to the logits) after one forward and backward."""
    net.params["score"][0].data[...] = logits
    net.params["score"][0].diff[...] = 0
    loss = net.forward(label=labels)["loss"].item()
    net.backward()
    return loss, net.params["score"][0].diff.copy()


def test_a_layer_given_only_param_str_underscore_reads_its_settings_in_a_real_net(
        tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    logits = rng.normal(scale=2.0, size=(4, 3)).astype(np.float32)
    targets = (rng.random((4, 3)) < 0.3).astype(np.float32)
    net = fork_style_net(tmp_path, monkeypatch, "FocalLossLayer", logits.shape, targets.shape)
    layer = net.layers[list(net._layer_names).index("loss")]
    assert not hasattr(layer, "param_str") and layer.param_str_ == FORK_SETTINGS["FocalLossLayer"]
    loss, grad = run_once(net, logits, targets)
    expected_loss, expected_grad = sigmoid_focal_loss_and_gradient(
        logits.astype(np.float64), targets, focusing_parameter=1, alpha=0.25, normalization="valid")
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-7)
    default_loss, _ = sigmoid_focal_loss_and_gradient(logits.astype(np.float64), targets)
    assert abs(default_loss - expected_loss) > 1e-2 * expected_loss   # the settings mattered


def test_a_softmax_layer_given_only_param_str_underscore_ignores_label_minus_1_in_a_real_net(
        tmp_path, monkeypatch):
    # Label -1 is an InputError unless ignore_label: -1 was read from param_str_.
    rng = np.random.default_rng(6)
    logits = rng.normal(scale=2.0, size=(6, 2)).astype(np.float32)
    labels = np.float32([1, 0, -1, 0, -1, 1])
    net = fork_style_net(tmp_path, monkeypatch, "SoftmaxFocalLossLayer", logits.shape, labels.shape)
    loss, grad = run_once(net, logits, labels)
    expected_loss, expected_grad = softmax_focal_loss_and_gradient(
        logits.astype(np.float64), labels, focusing_parameter=1, ignore_label=-1)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-7)
    assert not grad[labels == -1].any()
