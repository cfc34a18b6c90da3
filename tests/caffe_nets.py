"""Real Caffe nets for the tests: the package's own prototxt builder (focal_loss_layer.check.nets)
with the tests' defaults, caffe.Net from it, and the `caffe` tool."""
import os
import subprocess

from focal_loss_layer.check import nets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAFFE_TOOL = os.path.join(REPO, ".venv", "bin", "caffe")


def focal_layer(param_str="", bottoms=("score", "label"), loss_weight=1.0, name="loss",
                layer="FocalLossLayer"):
    """One of the package's layers; param_str: a dict of settings or param_str text as is."""
    return nets.python_loss(name, "focal_loss_layer", layer, param_str, bottoms, loss_weight)


def input_net(logits_shape, labels_shape, layers, force_backward=True):
    """A net whose inputs 'score' and 'label' are set from Python, followed by `layers`."""
    return (f"force_backward: {'true' if force_backward else 'false'}\n"
            + nets.input_layer("score", logits_shape) + nets.input_layer("label", labels_shape)
            + layers)


def load_net(text, phase=None):
    """caffe.Net from prototxt text, in CPU mode."""
    return nets.load_net(text, phase, cpu=True)


def run_caffe_tool(args, cwd, timeout=600, extra_pythonpath=None):
    """Run .venv/bin/caffe (the real tool) and return (returncode, stdout + stderr)."""
    env = dict(os.environ, GLOG_minloglevel="0", GLOG_logtostderr="1")
    env.pop("PYTHONPATH", None)
    if extra_pythonpath:
        env["PYTHONPATH"] = extra_pythonpath
    done = subprocess.run([CAFFE_TOOL] + list(args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr
