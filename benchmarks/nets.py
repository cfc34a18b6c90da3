"""The benchmark nets, composed of focal_loss_layer.check.nets' layers, and caffe.Net from them.

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
from focal_loss_layer.check import nets

SCE = "SigmoidCrossEntropyLoss"
IGNORE_LABEL = 255
_SCALE = ('layer { name: "scale" type: "Scale" bottom: "x" top: "score"\n'
          '  scale_param { axis: 1 num_axes: 1 bias_term: true } }\n')


def _focal_layer(name, label, settings, layer="FocalLossLayer"):
    return nets.python_loss(name, "focal_loss_layer", layer, settings, bottoms=("score", label))


def comparison_net(shape, focal_layers, with_index_labels=True, with_ignore_labels=True):
    """Prototxt text: inputs, the learnable Scale, SCE ("sce") and focal_layers, a list of
    (name, label blob, settings)."""
    text = nets.input_layer("x", shape) + nets.input_layer("label", shape)
    if with_ignore_labels:
        text += nets.input_layer("label_ignore", shape)
    if with_index_labels:
        text += nets.input_layer("label_index", (shape[0],) + tuple(shape[2:]))
    text += _SCALE + nets.caffe_loss("sce", SCE)
    for name, label, settings in focal_layers:
        text += _focal_layer(name, label, settings)
    return text


def softmax_comparison_net(shape, focal_layers):
    """Prototxt text: x, label_class, the learnable Scale, SoftmaxWithLoss ("swl", loss_param
    ignore_label IGNORE_LABEL) and SoftmaxFocalLossLayers, a list of (name, settings)."""
    text = (nets.input_layer("x", shape)
            + nets.input_layer("label_class", (shape[0],) + tuple(shape[2:])) + _SCALE
            + nets.caffe_loss("swl", "SoftmaxWithLoss", ("score", "label_class"),
                              loss_param={"ignore_label": IGNORE_LABEL}))
    for name, settings in focal_layers:
        text += _focal_layer(name, "label_class", settings, "SoftmaxFocalLossLayer")
    return text


def load_net(text):
    """A caffe.Net (TRAIN phase, CPU) from prototxt text."""
    return nets.load_net(text, cpu=True)
