"""Prototxt text from layer types every Caffe has (BVLC master included): Input, DummyData,
InnerProduct, SigmoidCrossEntropyLoss, SoftmaxWithLoss and Python; and caffe.Net from such text.

The one builder of the package's nets: the check's, and those of the tests (tests/caffe_nets.py)
and the benchmark (benchmarks/nets.py), so that a prototxt detail (how param_str is quoted, what
loss_weight a Python layer gets) is written once."""
import json
import os
import tempfile


def dims(shape) -> str:
    return " ".join(f"dim: {d}" for d in shape)


def input_layer(name: str, shape) -> str:
    return (f'layer {{ name: "{name}" type: "Input" top: "{name}" '
            f'input_param {{ shape {{ {dims(shape)} }} }} }}\n')


def dummy_data(name: str, tops) -> str:
    """A DummyData layer (for the `caffe` tool, which has no Python to set inputs): tops is a
    sequence of (top name, shape, filler text such as 'type: "constant" value: 1')."""
    fillers = " ".join(f"data_filler {{ {filler} }}" for _, _, filler in tops)
    shapes = " ".join(f"shape {{ {dims(shape)} }}" for _, shape, _ in tops)
    top = " ".join(f'top: "{name}"' for name, _, _ in tops)
    return (f'layer {{ name: "{name}" type: "DummyData" {top} '
            f"dummy_data_param {{ {fillers} {shapes} }} }}\n")


def inner_product(name: str, bottom: str, top: str, num_output: int,
                  weight_filler: str = 'type: "gaussian" std: 0.1') -> str:
    return (f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{top}" '
            f'inner_product_param {{ num_output: {num_output} '
            f'weight_filler {{ {weight_filler} }} }} }}\n')


def python_loss(name: str, module: str, layer: str, settings, bottoms=("score", "label"),
                loss_weight=1.0, propagate_down=None) -> str:
    """A Python layer `layer` from `module` with top `name`. settings: a dict, written to
    param_str as JSON in its own key order (keys of mixed types allowed, as class_balances
    takes them), or param_str text as it is (Python dict literals, malformed text).
    loss_weight None writes no loss_weight line (a Python layer then contributes no loss)."""
    param_str = settings if isinstance(settings, str) else json.dumps(settings)
    return _layer(name, "Python", bottoms, loss_weight, propagate_down,
                  f'python_param {{ module: "{module}" layer: "{layer}" '
                  f"param_str: {prototxt_string(param_str)} }}")


def caffe_loss(name: str, layer_type: str, bottoms=("score", "label"), loss_weight=1.0,
               propagate_down=None, loss_param=None) -> str:
    """One of Caffe's own loss layers (SigmoidCrossEntropyLoss, SoftmaxWithLoss) with top `name`;
    loss_param: its fields as a dict, e.g. {"ignore_label": 255, "normalization": "VALID"}."""
    fields = " ".join(f"{key}: {value}" for key, value in (loss_param or {}).items())
    return _layer(name, layer_type, bottoms, loss_weight, propagate_down,
                  f"loss_param {{ {fields} }}" if fields else "")


def _layer(name, layer_type, bottoms, loss_weight, propagate_down, params="") -> str:
    bottom = " ".join(f'bottom: "{b}"' for b in bottoms)
    text = f'layer {{ name: "{name}" type: "{layer_type}" {bottom} top: "{name}" {params}'
    if loss_weight is not None:
        text += f" loss_weight: {loss_weight}"
    for flag in propagate_down or ():
        text += f" propagate_down: {'true' if flag else 'false'}"
    return text + " }\n"


def prototxt_string(text: str) -> str:
    """A prototxt string literal: backslashes and double quotes escaped (for JSON text, the same
    as json.dumps of it)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load_net(text: str, phase=None, cpu: bool = False):
    """caffe.Net from prototxt text (TRAIN unless phase says otherwise), in Caffe's current mode
    (the check chooses it) or, cpu=True, in CPU mode (the tests and the benchmark, whatever
    mode an earlier caller left)."""
    import caffe
    if cpu:
        caffe.set_mode_cpu()
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
        f.write(text)
    try:
        return caffe.Net(f.name, caffe.TRAIN if phase is None else phase)
    finally:
        os.unlink(f.name)
