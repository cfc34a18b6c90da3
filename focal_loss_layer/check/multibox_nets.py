"""SSD-shaped loss nets for MultiBoxFocalLossLayer and its C++ twin MultiBoxLoss, and random
inputs for them: priors around the boxes (so that some match) and elsewhere, label rows with
difficult boxes and images without boxes. Used by the twin tests, the check and the benchmark.

The predictions come from Parameter layers, so that Caffe computes their gradients without
force_backward (which MultiBoxLoss refuses: it aborts on propagate_down to priors or labels)."""
import json

import numpy as np

from .nets import dims, input_layer, load_net, prototxt_string

VARIANCES = (0.1, 0.1, 0.2, 0.2)      # SSD's PriorBox variances


def parameter_layer(name: str, shape) -> str:
    return (f'layer {{ name: "{name}" type: "Parameter" top: "{name}" '
            f'parameter_param {{ shape {{ {dims(shape)} }} }} }}\n')


def multibox_net(num: int, priors: int, classes: int, rows: int, settings: dict,
                 python: bool, loss_weight: float = 1.0, module: str = "focal_loss_layer") -> str:
    """Prototxt of mbox_loc (N, P·4) and mbox_conf (N, P·C) from Parameter layers, priors
    (1, 2, P·4) and labels (1, 1, G, 8) from Input layers, and the loss "mbox_loss"
    (multibox_loss)."""
    return (multibox_inputs(num, priors, classes, rows)
            + multibox_loss("mbox_loss", settings, python, loss_weight, module))


def multibox_inputs(num: int, priors: int, classes: int, rows: int) -> str:
    """The four bottoms of a multibox loss: mbox_loc, mbox_conf (Parameter layers), mbox_priorbox,
    label (Input layers)."""
    return (parameter_layer("mbox_loc", (num, priors * 4))
            + parameter_layer("mbox_conf", (num, priors * classes))
            + input_layer("mbox_priorbox", (1, 2, priors * 4))
            + input_layer("label", (1, 1, rows, 8)))


def multibox_loss(name: str, settings: dict, python: bool, loss_weight: float = 1.0,
                  module: str = "focal_loss_layer") -> str:
    """A loss on multibox_inputs' bottoms with top `name`: C++ MultiBoxLoss with `settings`
    (multibox_loss_param fields, enums as upper-case strings, and `normalization` for
    loss_param), or (python) `module`'s MultiBoxFocalLossLayer with the same settings in
    param_str."""
    bottoms = ' bottom: "mbox_loc" bottom: "mbox_conf" bottom: "mbox_priorbox" bottom: "label"'
    tail = (f' top: "{name}" loss_weight: {loss_weight} propagate_down: true '
            "propagate_down: true propagate_down: false propagate_down: false }\n")
    if python:
        return (f'layer {{ name: "{name}" type: "Python"' + bottoms
                + f' python_param {{ module: "{module}" layer: "MultiBoxFocalLossLayer" '
                f"param_str: {prototxt_string(json.dumps(settings))} }}" + tail)
    fields = {k: v for k, v in settings.items() if k != "normalization"}
    body = " ".join(f"{key}: {_proto_value(value)}" for key, value in fields.items())
    loss_param = (f" loss_param {{ normalization: {settings['normalization']} }}"
                  if "normalization" in settings else "")
    return (f'layer {{ name: "{name}" type: "MultiBoxLoss"' + bottoms
            + f" multibox_loss_param {{ {body} }}{loss_param}" + tail)


def _proto_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def random_inputs(rng, num: int, priors: int, classes: int, boxes_per_image=(0, 4),
                  difficult_fraction=0.2, background_label_id=0, border_fraction=0.1):
    """(loc (N, P·4), conf (N, P·C), priors (1, 2, P·4), labels (1, 1, G, 8)) float32: boxes
    inside the image, priors half jittered copies of the boxes (so that both matching stages
    find some) and half random, a share of them crossing the border; continuous random
    predictions (the C++ mining sort is unstable under ties); images without boxes (but a box
    in the batch, and an image's first box never difficult, unless boxes_per_image is (0, 0));
    a row of −1s when the batch has no box at all."""
    counts = rng.integers(boxes_per_image[0], boxes_per_image[1] + 1, num)
    if boxes_per_image[1] and not counts.any():
        counts[0] = 1            # a batch with boxes ever asked for has one
    rows = []
    for image in range(num):
        for k in range(counts[image]):
            x0, y0 = rng.uniform(0, 0.7, 2)
            w, h = rng.uniform(0.1, 0.3, 2)
            label = rng.choice([c for c in range(classes) if c != background_label_id])
            difficult = k > 0 and rng.random() < difficult_fraction    # the first never is
            rows.append([image, label, 0, x0, y0, x0 + w, y0 + h, float(difficult)])
    boxes = np.array([r[3:7] for r in rows]).reshape(-1, 4)
    prior_boxes = []
    for k in range(priors):
        if len(boxes) and k % 2 == 0:
            box = boxes[rng.integers(len(boxes))]
            size = box[2:] - box[:2]
            jitter = rng.normal(0, 0.15, 4) * np.concatenate([size, size])
            prior_boxes.append(box + jitter)
        else:
            centre, half = rng.uniform(0, 1, 2), rng.uniform(0.03, 0.25, 2)
            prior_boxes.append(np.concatenate([centre - half, centre + half]))
    prior_boxes = np.array(prior_boxes)
    inside = rng.random(priors) >= border_fraction
    prior_boxes[inside] = np.clip(prior_boxes[inside], 0, 1)
    small = (prior_boxes[:, 2:] - prior_boxes[:, :2]) < 0.01
    prior_boxes[:, 2:] = np.where(small, prior_boxes[:, :2] + 0.01, prior_boxes[:, 2:])
    prior_data = np.concatenate([prior_boxes.reshape(-1), np.tile(VARIANCES, priors)])
    labels = np.array(rows if rows else [[-1] * 8], np.float32)
    loc = rng.normal(0, 1, (num, priors * 4))
    conf = rng.normal(0, 2, (num, priors * classes))
    return (loc.astype(np.float32), conf.astype(np.float32),
            prior_data.reshape(1, 2, -1).astype(np.float32),
            labels.reshape(1, 1, -1, 8))


def run_multibox(text: str, inputs):
    """(loss, loc gradient, conf gradient) of a multibox_net on inputs (random_inputs)."""
    net = load_net(text, cpu=True)
    loc, conf, priors, labels = inputs
    net.params["mbox_loc"][0].data[...] = loc
    net.params["mbox_conf"][0].data[...] = conf
    net.blobs["mbox_priorbox"].data[...] = priors
    net.blobs["label"].data[...] = labels
    loss = net.forward()["mbox_loss"].item()
    net.backward()
    # Read the bottoms' diffs: MultiBoxLoss without mining hands mbox_conf its own diff
    # (ShareDiff), which the Parameter layer's param diff does not see.
    return loss, net.blobs["mbox_loc"].diff.copy(), net.blobs["mbox_conf"].diff.copy()
