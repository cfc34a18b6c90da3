"""Prototxt for the benchmark nets and caffe.Net construction.

The comparison net: Input x → Scale (learnable, so the loss layers' logits need a gradient while
the labels, straight from Input layers, need none: no force_backward) → score, and on `score`
every loss layer being timed — ours with several settings and Caffe's SigmoidCrossEntropyLoss.

    x, score: (N, C, *spatial) float32      label: per-class targets, same shape
    label_ignore: the same with ignore_label = -1 at some positions
    label_index: class indices (N, *spatial), 0 = background

The softmax comparison net (softmax_comparison_net): the same x → Scale → score, and on it
Caffe's SoftmaxWithLoss ("swl") and SoftmaxFocalLossLayers, all reading

    label_class: one class 0..C−1 per position (N, *spatial), IGNORE_LABEL at some
"""
import json
import os
import tempfile

SCE = "SigmoidCrossEntropyLoss"
IGNORE_LABEL = 255
_SCALE = ('layer { name: "scale" type: "Scale" bottom: "x" top: "score"\n'
          '  scale_param { axis: 1 num_axes: 1 bias_term: true } }\n')


def _dims(shape):
    return " ".join(f"dim: {d}" for d in shape)


def input_layer(name, shape):
    return (f'layer {{ name: "{name}" type: "Input" top: "{name}" '
            f'input_param {{ shape {{ {_dims(shape)} }} }} }}\n')


def focal_layer(name, label, settings, layer="FocalLossLayer"):
    param_str = json.dumps(settings).replace('"', '\\"')
    return (f'layer {{ name: "{name}" type: "Python" bottom: "score" bottom: "{label}" top: "{name}"\n'
            f'  python_param {{ module: "focal_loss_layer" layer: "{layer}"\n'
            f'    param_str: "{param_str}" }}\n  loss_weight: 1 }}\n')


def sce_layer(name, label="label"):
    return (f'layer {{ name: "{name}" type: "{SCE}" bottom: "score" bottom: "{label}" '
            f'top: "{name}" loss_weight: 1 }}\n')


def comparison_net(shape, focal_layers, with_index_labels=True, with_ignore_labels=True):
    """Prototxt text: inputs, the learnable Scale, SCE ("sce") and focal_layers, a list of
    (name, label blob, settings)."""
    text = input_layer("x", shape) + input_layer("label", shape)
    if with_ignore_labels:
        text += input_layer("label_ignore", shape)
    if with_index_labels:
        text += input_layer("label_index", (shape[0],) + tuple(shape[2:]))
    text += _SCALE
    text += sce_layer("sce")
    for name, label, settings in focal_layers:
        text += focal_layer(name, label, settings)
    return text


def softmax_comparison_net(shape, focal_layers):
    """Prototxt text: x, label_class, the learnable Scale, SoftmaxWithLoss ("swl", loss_param
    ignore_label IGNORE_LABEL) and SoftmaxFocalLossLayers, a list of (name, settings)."""
    text = input_layer("x", shape) + input_layer("label_class", (shape[0],) + tuple(shape[2:]))
    text += _SCALE
    text += (f'layer {{ name: "swl" type: "SoftmaxWithLoss" bottom: "score" bottom: "label_class" '
             f'top: "swl" loss_weight: 1 loss_param {{ ignore_label: {IGNORE_LABEL} }} }}\n')
    for name, settings in focal_layers:
        text += focal_layer(name, "label_class", settings, "SoftmaxFocalLossLayer")
    return text


def load_net(text):
    """A caffe.Net (TRAIN phase, CPU) from prototxt text."""
    import caffe
    caffe.set_mode_cpu()
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
        f.write(text)
    try:
        return caffe.Net(f.name, caffe.TRAIN)
    finally:
        os.unlink(f.name)
