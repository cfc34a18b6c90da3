"""Prototxt text for the check's nets, from layer types every Caffe has (BVLC master included):
Input, InnerProduct, DummyData, SigmoidCrossEntropyLoss, SoftmaxWithLoss and Python; and
caffe.Net from such text."""
import json
import os
import tempfile


def dims(shape) -> str:
    return " ".join(f"dim: {d}" for d in shape)


def input_layer(name: str, shape) -> str:
    return (f'layer {{ name: "{name}" type: "Input" top: "{name}" '
            f'input_param {{ shape {{ {dims(shape)} }} }} }}\n')


def inner_product(name: str, bottom: str, top: str, num_output: int) -> str:
    return (f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{top}" '
            f'inner_product_param {{ num_output: {num_output} '
            f'weight_filler {{ type: "gaussian" std: 0.1 }} }} }}\n')


def python_loss(name: str, module: str, layer: str, settings: dict, bottoms=("score", "label"),
                loss_weight=1.0, propagate_down=None) -> str:
    """A Python layer `layer` from `module`, configured by param_str = json of settings."""
    param_str = json.dumps(json.dumps(settings, sort_keys=True))   # JSON, quoted for prototxt
    return _layer(name, "Python", bottoms, loss_weight, propagate_down,
                  f'python_param {{ module: "{module}" layer: "{layer}" param_str: {param_str} }}')


def caffe_loss(name: str, layer_type: str, bottoms=("score", "label"), loss_weight=1.0,
               propagate_down=None) -> str:
    """One of Caffe's own loss layers (SigmoidCrossEntropyLoss, SoftmaxWithLoss)."""
    return _layer(name, layer_type, bottoms, loss_weight, propagate_down)


def _layer(name, layer_type, bottoms, loss_weight, propagate_down, params="") -> str:
    bottom = " ".join(f'bottom: "{b}"' for b in bottoms)
    text = f'layer {{ name: "{name}" type: "{layer_type}" {bottom} top: "{name}" {params}'
    text += f" loss_weight: {loss_weight}"
    for flag in propagate_down or ():
        text += f" propagate_down: {'true' if flag else 'false'}"
    return text + " }\n"


def load_net(text: str, phase=None):
    """caffe.Net from prototxt text (TRAIN unless phase says otherwise), in Caffe's current mode."""
    import caffe
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
        f.write(text)
    try:
        return caffe.Net(f.name, caffe.TRAIN if phase is None else phase)
    finally:
        os.unlink(f.name)
