"""Real Caffe nets for the tests: prototxt text, caffe.Net from it, and the `caffe` tool."""
import os
import subprocess

import numpy as np

from focal_loss_layer.check import nets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAFFE_TOOL = os.path.join(REPO, ".venv", "bin", "caffe")


def focal_layer(param_str="", bottoms=("score", "label"), loss_weight=1.0, name="loss",
                layer="FocalLossLayer"):
    bottom_lines = "".join(f'  bottom: "{b}"\n' for b in bottoms)
    return (f'layer {{\n  name: "{name}"  type: "Python"\n{bottom_lines}  top: "{name}"\n'
            f'  python_param {{ module: "focal_loss_layer"  layer: "{layer}"\n'
            f'    param_str: {_quote(param_str)} }}\n  loss_weight: {loss_weight}\n}}\n')


def input_net(logits_shape, labels_shape, layers, force_backward=True):
    """A net whose inputs 'score' and 'label' are set from Python, followed by `layers`."""
    def dims(shape):
        return " ".join(f"dim: {d}" for d in shape)
    return ((f"force_backward: {'true' if force_backward else 'false'}\n")
            + f'layer {{ name: "score" type: "Input" top: "score" input_param {{ shape {{ {dims(logits_shape)} }} }} }}\n'
            + f'layer {{ name: "label" type: "Input" top: "label" input_param {{ shape {{ {dims(labels_shape)} }} }} }}\n'
            + layers)


def load_net(text, phase=None):
    """caffe.Net from prototxt text, in CPU mode (focal_loss_layer.check.nets.load_net)."""
    import caffe
    caffe.set_mode_cpu()
    return nets.load_net(text, phase)


def check_force_backward_leaves_bottoms_and_zeroes_label_diff(net, logits, labels):
    """In a force_backward net: forward + backward with these bottoms sets the label diff (7
    before) to zero and leaves both bottoms' data as given."""
    net.blobs["label"].diff[...] = 7.0
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    net.forward()
    net.backward()
    assert np.all(net.blobs["label"].diff == 0)
    np.testing.assert_array_equal(net.blobs["score"].data, logits.astype(np.float32))
    np.testing.assert_array_equal(net.blobs["label"].data, labels.astype(np.float32))


def run_caffe_tool(args, cwd, timeout=600, extra_pythonpath=None):
    """Run .venv/bin/caffe (the real tool) and return (returncode, stdout + stderr)."""
    env = dict(os.environ, GLOG_minloglevel="0", GLOG_logtostderr="1")
    env.pop("PYTHONPATH", None)
    if extra_pythonpath:
        env["PYTHONPATH"] = extra_pythonpath
    done = subprocess.run([CAFFE_TOOL] + list(args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
