"""Writes prototxt/detector/: the RetinaNet-lite train/test nets (one per loss), their solvers and
the deploy net. The committed files are this module's output (a test checks it), so the two
train nets cannot drift apart: they differ in the loss layers' param_str only.

    python -m examples.detector.prototxt      # rewrite prototxt/detector/ from this file

The net, for a CANVAS x CANVAS grey image:

    backbone   conv1 (16, stride 2)  conv2 (32) pool  conv3 (64) = C2, stride 4
               pool conv4 (64) = C3, stride 8    pool conv5 (64) = C4, stride 16
    pyramid    P4 = lat(C4);  P3 = lat(C3) + up(P4);  P2 = lat(C2) + up(P3)   (FEATURES channels)
    heads      on every level, the SAME weights (Caffe `param { name: ... }`):
               class subnet  conv 3x3 + ReLU, conv 3x3 -> A*C logits, bias b = -log((1-pi)/pi)
               box subnet    conv 3x3 + ReLU, conv 3x3 -> A*4 deltas
    losses     FocalLossLayer per level, normalizer = positives in the batch (3rd bottom);
               SmoothL1Loss per level on positive anchors, summed, times N / max(positives, 1)
"""
import math
import os
from typing import Dict, List

from .anchors import IGNORE_LABEL, LEVELS, NUM_ANCHORS
from .scenes import CANVAS, NUM_CLASSES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOLDER = os.path.join(REPO, "prototxt", "detector")
FEATURES = 32          # pyramid and head channels (RetinaNet: 256)
HEAD_KERNEL = 3        # the class and box outputs' kernel (RetinaNet: 3)
PRIOR = 0.01           # pi: every anchor starts at foreground probability 0.01
PRIOR_BIAS = -math.log((1 - PRIOR) / PRIOR)
TRAIN_BATCH = 8
TEST_BATCH = TRAIN_BATCH   # the box loss's N / max(positives, 1) assumes the train batch
# The losses compared. Both: the prior bias and the positives normalizer (3rd bottom).
LOSSES = {
    "focal": {"label": "FL γ=2, α=0.25", "param": {"focusing_parameter": 2, "alpha": 0.25}},
    "ce": {"label": "CE α=0.75 (γ=0)", "param": {"focusing_parameter": 0, "alpha": 0.75}},
}
# Solver defaults, for a run by hand; make example sets type, base_lr (its sweep's pick),
# random_seed (per seed), the schedule's lengths and test_iter (examples.detector.experiment).
# Adam: beta1 = momentum, beta2 = momentum2; SGD (the paper's) reads momentum only.
SOLVER = {"type": "Adam", "momentum": 0.9, "momentum2": 0.999,
          "weight_decay": 0.0001, "lr_policy": "step", "gamma": 0.1, "stepsize": 480,
          "max_iter": 640, "display": 20, "average_loss": 20, "test_interval": 320,
          "test_iter": 20, "random_seed": 1701}
# base_lr per loss for a run by hand: the Adam rates make example's validation sweep picked in
# the committed results (results/results.json, detector.sweep.picked).
BASE_LR = {"focal": 0.002, "ce": 0.004}


def _layer(name: str, kind: str, bottoms: List[str], tops: List[str], body: str = "",
           comment: str = "") -> str:
    lines = [f"# {comment}"] if comment else []
    head = f'  name: "{name}"  type: "{kind}"'
    wires = "".join(f'  bottom: "{b}"' for b in bottoms) + "".join(f'  top: "{t}"' for t in tops)
    body_lines = "".join(f"\n  {line}" for line in body.strip().splitlines()) if body else ""
    lines.append("layer {\n" + head + wires + body_lines + "\n}")
    return "\n".join(lines)


def _conv(name, bottom, top, outputs, kernel, *, stride=1, shared=None, train=True, bias=0.0,
          std=None, relu=True, comment=""):
    """Convolution (+ ReLU in place). shared: a prefix naming the weights, so that every layer
    with the same prefix uses the same parameter blobs."""
    params = ""
    if shared:
        params = f'param {{ name: "{shared}_w" }}\nparam {{ name: "{shared}_b" }}\n'
    fillers = ""
    if train:
        weight = f'type: "gaussian" std: {std}' if std else 'type: "msra"'
        fillers = (f"\n  weight_filler {{ {weight} }}"
                   f'\n  bias_filler {{ type: "constant" value: {bias:.7g} }}')
    body = (params + f"convolution_param {{ num_output: {outputs}  kernel_size: {kernel}"
            f"  pad: {kernel // 2}" + (f"  stride: {stride}" if stride > 1 else "")
            + f"{fillers} }}")
    text = _layer(name, "Convolution", [bottom], [top], body, comment)
    if relu:
        text += "\n" + _layer(f"{name}_relu", "ReLU", [top], [top])
    return text


def _pool(name, bottom, top):
    return _layer(name, "Pooling", [bottom], [top],
                  "pooling_param { pool: MAX  kernel_size: 2  stride: 2 }")


def _upsample(name, bottom, top):
    # This Caffe's "Upsample" layer has an empty backward (no gradient would reach the upper
    # levels), so nearest-neighbour 2x upsampling is a fixed depthwise Deconvolution instead:
    # a 2x2 kernel of ones at stride 2 copies each value into a 2x2 block; lr_mult 0 keeps it.
    return _layer(name, "Deconvolution", [bottom], [top],
                  "param { lr_mult: 0  decay_mult: 0 }\n"
                  f"convolution_param {{ num_output: {FEATURES}  group: {FEATURES}  kernel_size: 2"
                  '  stride: 2  bias_term: false\n  weight_filler { type: "constant" value: 1 } }')


def trunk(train: bool) -> str:
    """Backbone, pyramid and the shared heads: data -> cls_score_<l>, box_pred_<l> per level.
    train: with weight fillers (the deploy net takes trained weights and needs none)."""
    spatial = {level.name: CANVAS // level.stride for level in LEVELS}
    p2, p3, p4 = (level.name for level in LEVELS)
    parts = [
        _conv("conv1", "data", "conv1", 16, 3, stride=2, train=train,
              comment=f"Backbone. Stride 2 at once: a full-resolution ReLU and pooling cost a "
                      f"quarter of an iteration here. (N, 16, {CANVAS // 2}, {CANVAS // 2})"),
        _conv("conv2", "conv1", "conv2", 32, 3, train=train,
              comment=f"(N, 32, {CANVAS // 2}, {CANVAS // 2})"),
        _pool("pool2", "conv2", "pool2"),
        _conv("conv3", "pool2", "conv3", 64, 3, train=train,
              comment=f"C2, stride 4: (N, 64, {spatial[p2]}, {spatial[p2]})"),
        _pool("pool3", "conv3", "pool3"),
        _conv("conv4", "pool3", "conv4", 64, 3, train=train,
              comment=f"C3, stride 8: (N, 64, {spatial[p3]}, {spatial[p3]})"),
        _pool("pool4", "conv4", "pool4"),
        _conv("conv5", "pool4", "conv5", 64, 3, train=train,
              comment=f"C4, stride 16: (N, 64, {spatial[p4]}, {spatial[p4]})"),
        _conv(f"lateral_{p4}", "conv5", p4, FEATURES, 1, train=train, relu=False,
              comment=f"Feature pyramid (FPN's top-down path), {FEATURES} channels per level. "
                      f"{p4}: (N, {FEATURES}, {spatial[p4]}, {spatial[p4]})"),
        _upsample(f"up_{p4}", p4, f"up_{p4}"),
        _conv(f"lateral_{p3}", "conv4", f"lateral_{p3}", FEATURES, 1, train=train, relu=False),
        _layer(f"merge_{p3}", "Eltwise", [f"lateral_{p3}", f"up_{p4}"], [p3],
               "eltwise_param { operation: SUM }",
               f"{p3}: (N, {FEATURES}, {spatial[p3]}, {spatial[p3]})"),
        _upsample(f"up_{p3}", p3, f"up_{p3}"),
        _conv(f"lateral_{p2}", "conv3", f"lateral_{p2}", FEATURES, 1, train=train, relu=False),
        _layer(f"merge_{p2}", "Eltwise", [f"lateral_{p2}", f"up_{p3}"], [p2],
               "eltwise_param { operation: SUM }",
               f"{p2}: (N, {FEATURES}, {spatial[p2]}, {spatial[p2]})"),
    ]
    for level in LEVELS:
        name, size = level.name, spatial[level.name]
        parts += [
            _conv(f"cls_conv_{name}", name, f"cls_conv_{name}", FEATURES, 3, shared="cls_conv",
                  train=train, std=0.01,
                  comment=f"Class subnet on {name} (weights shared across levels by name)."),
            _conv(f"cls_score_{name}", f"cls_conv_{name}", f"cls_score_{name}",
                  NUM_ANCHORS * NUM_CLASSES, HEAD_KERNEL, shared="cls_score", train=train, std=0.01,
                  bias=PRIOR_BIAS, relu=False,
                  comment=f"(N, A*C = {NUM_ANCHORS}*{NUM_CLASSES}, {size}, {size}) logits, channel "
                          f"a*C + c. Bias: the prior b = -log((1-pi)/pi), pi = {PRIOR}."),
            _conv(f"box_conv_{name}", name, f"box_conv_{name}", FEATURES, 3, shared="box_conv",
                  train=train, std=0.01, comment=f"Box subnet on {name} (shared weights)."),
            _conv(f"box_pred_{name}", f"box_conv_{name}", f"box_pred_{name}", NUM_ANCHORS * 4,
                  HEAD_KERNEL,
                  shared="box_pred", train=train, std=0.01, relu=False,
                  comment=f"(N, A*4 = {NUM_ANCHORS * 4}, {size}, {size}) deltas, channel a*4 + k"),
        ]
    return "\n".join(parts)


def train_net(key: str) -> str:
    loss = LOSSES[key]
    param = dict(loss["param"], ignore_label=IGNORE_LABEL, num_anchors=NUM_ANCHORS)
    tops = (["data"] + [f"labels_{l.name}" for l in LEVELS]
            + [f"box_targets_{l.name}" for l in LEVELS] + ["num_positives"])
    top_list = "".join(f'  top: "{t}"' for t in tops)
    header = f'''# RetinaNet-lite on synthetic digit scenes, train/test net.
# Classification loss: {loss['label']}.
# Written by examples/detector/prototxt.py (python -m examples.detector.prototxt); edit that, not
# this file. The train nets of the detector differ in the FocalLossLayer param_str only.
#
# Paths resolve from the working directory: run from the repository root after `make example`
# has written results/data/detector/:
#   .venv/bin/caffe train --solver=prototxt/detector/solver_{key}.prototxt
name: "detector_{key}"

# HDF5 written by examples/detector/data.py (all float32):
#   data (N, 1, {CANVAS}, {CANVAS}) in [0, 1]
#   labels_<l> (N, A, H, W): 0 background, 1..{NUM_CLASSES} digit + 1,
#       {IGNORE_LABEL} ignored (best IoU in [0.4, 0.5))
#   box_targets_<l> (N, A*4, H, W): encoded boxes of the positive anchors, 0 elsewhere
#   num_positives (N, 1): positive anchors of each image over all levels
layer {{
  name: "data"  type: "HDF5Data"{top_list}
  include {{ phase: TRAIN }}
  hdf5_data_param {{ source: "results/data/detector/train.txt"  batch_size: {TRAIN_BATCH} }}
}}
layer {{
  name: "data"  type: "HDF5Data"{top_list}
  include {{ phase: TEST }}
  # The validation split: the test split is only scored, from pycaffe, after training.
  hdf5_data_param {{ source: "results/data/detector/val.txt"  batch_size: {TEST_BATCH} }}
}}
'''
    losses = [
        _layer("positives", "Reduction", ["num_positives"], ["positives"],
               "reduction_param { operation: SUM }",
               "Positive anchors in the batch, a scalar: the normalizer of every loss below."),
    ]
    for level in LEVELS:
        name = level.name
        losses.append(_layer(
            f"cls_loss_{name}", "Python", [f"cls_score_{name}", f"labels_{name}", "positives"],
            [f"cls_loss_{name}"],
            'python_param { module: "focal_loss_layer"  layer: "FocalLossLayer"\n'
            f'  param_str: "{_param_str(param)}" }}\nloss_weight: 1',
            f"Classification loss on {name}: sum over the level's non-ignored class logits / "
            "max(positives, 1)."))
    for level in LEVELS:
        name = level.name
        losses += [
            _layer(f"positive_{name}", "Threshold", [f"labels_{name}"], [f"positive_{name}"],
                   "threshold_param { threshold: 0.5 }",
                   f"Box loss on {name}, positive anchors only: weight 1 where label >= 1 "
                   "(background 0 and ignored -1 give 0), (N, A, H, W) ..."),
            _layer(f"positive_{name}_5d", "Reshape", [f"positive_{name}"], [f"positive_{name}_5d"],
                   "reshape_param { shape { dim: 1 }  axis: 2  num_axes: 0 }",
                   "... -> (N, A, 1, H, W) ..."),
            _layer(f"positive_{name}_x4", "Tile", [f"positive_{name}_5d"], [f"positive_{name}_x4"],
                   "tile_param { axis: 2  tiles: 4 }", "... -> (N, A, 4, H, W) ..."),
            _layer(f"box_weight_{name}", "Reshape", [f"positive_{name}_x4"], [f"box_weight_{name}"],
                   "reshape_param { shape { dim: -1 }  axis: 1  num_axes: 2 }",
                   "... -> (N, A*4, H, W), channel a*4 + k like the deltas."),
            # This Caffe's SmoothL1Loss refuses its optional weights bottom (LossLayer's exact
            # count of 2 wins), so the mask multiplies the prediction instead: the targets are 0
            # off positives, so off positives both sides are 0 and give no loss and no gradient.
            _layer(f"box_pred_{name}_positive", "Eltwise",
                   [f"box_pred_{name}", f"box_weight_{name}"], [f"box_pred_{name}_positive"],
                   "eltwise_param { operation: PROD }"),
            _layer(f"box_loss_{name}", "SmoothL1Loss",
                   [f"box_pred_{name}_positive", f"box_targets_{name}"],
                   [f"box_loss_{name}"], "loss_weight: 0",
                   "Sum of smooth L1 over positives' deltas / N; weighted through box_loss."),
        ]
    losses += [
        _layer("box_loss_sum", "Eltwise", [f"box_loss_{l.name}" for l in LEVELS], ["box_loss_sum"],
               "eltwise_param { operation: SUM }"),
        _layer("positives_minus_1", "Power", ["positives"], ["positives_minus_1"],
               "power_param { shift: -1 }",
               f"N / max(positives, 1) = ((max(positives - 1, 0) + 1) / N)^-1, N = {TRAIN_BATCH} "
               "the batch size (SmoothL1Loss divides by N; this undoes it) ..."),
        _layer("positives_minus_1_relu", "ReLU", ["positives_minus_1"], ["positives_minus_1"]),
        _layer("batch_per_positive", "Power", ["positives_minus_1"], ["batch_per_positive"],
               f"power_param {{ shift: {1 / TRAIN_BATCH:.7g}  scale: {1 / TRAIN_BATCH:.7g}"
               "  power: -1 }",
               "... ((x + 1) / N)^-1 with x = max(positives - 1, 0)."),
        _layer("box_loss", "Eltwise", ["box_loss_sum", "batch_per_positive"], ["box_loss"],
               "eltwise_param { operation: PROD }\nloss_weight: 1",
               "Box loss = sum of smooth L1 over positive anchors / max(positives, 1), as the "
               "class loss."),
    ]
    return header + "\n" + trunk(train=True) + "\n\n" + "\n".join(losses) + "\n"


def deploy_net() -> str:
    outputs = "".join(f"\n#   cls_prob_{l.name} (N, A*C, {CANVAS // l.stride}, "
                      f"{CANVAS // l.stride}), box_pred_{l.name} (N, A*4, ...)" for l in LEVELS)
    header = f'''# RetinaNet-lite deploy net: the train nets' layers without data and losses, for
# weights from either solver (layers are matched by name). Written by
# examples/detector/prototxt.py.
# Input: data (N, 1, {CANVAS}, {CANVAS}) in [0, 1]. Outputs, per level:{outputs}
# (cls_score_<l> holds the logits). examples/detector/inference.py decodes them.
name: "detector_deploy"
layer {{
  name: "data"  type: "Input"  top: "data"
  input_param {{ shape {{ dim: 1  dim: 1  dim: {CANVAS}  dim: {CANVAS} }} }}
}}
'''
    probs = [_layer(f"cls_prob_{l.name}", "Sigmoid", [f"cls_score_{l.name}"],
                    [f"cls_prob_{l.name}"]) for l in LEVELS]
    return header + trunk(train=False) + "\n" + "\n".join(probs) + "\n"


def solver(key: str) -> str:
    fields = "\n".join(f"{name}: {_solver_value(value)}"
                       for name, value in {"type": SOLVER["type"], "base_lr": BASE_LR[key],
                                           **SOLVER}.items())
    return (f"# RetinaNet-lite, solver for the {LOSSES[key]['label']} net. Written by "
            "examples/detector/prototxt.py.\n"
            "# make example sets the solver type, base_lr (its validation sweep's pick), "
            "random_seed and the schedule's\n# lengths; these are the defaults for a run by hand, "
            "from the repository root after `make example`:\n"
            f"#   .venv/bin/caffe train --solver=prototxt/detector/solver_{key}.prototxt\n"
            f'net: "prototxt/detector/train_{key}.prototxt"\n{fields}\n'
            f'snapshot: 0\nsnapshot_prefix: "results/runs/detector/{key}/snapshot"\n'
            "solver_mode: CPU\n")


def files() -> Dict[str, str]:
    """File name -> text of everything in prototxt/detector/."""
    out = {"deploy.prototxt": deploy_net()}
    for key in LOSSES:
        out[f"train_{key}.prototxt"] = train_net(key)
        out[f"solver_{key}.prototxt"] = solver(key)
    return out


def _param_str(param: dict) -> str:
    return "{" + ", ".join(f"'{k}': {v!r}" for k, v in param.items()) + "}"


def _solver_value(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return f"{value:g}" if isinstance(value, float) else str(value)


def main() -> None:
    os.makedirs(FOLDER, exist_ok=True)
    for name, text in files().items():
        with open(os.path.join(FOLDER, name), "w") as f:
            f.write(text)
        print(os.path.relpath(os.path.join(FOLDER, name), REPO))


if __name__ == "__main__":
    main()
