"""Writes prototxt/detector/: the RetinaNet-lite train/test nets (one per arm of the study), their
two-stage solvers (examples.common.protocol) and the deploy net. The committed files are this
module's output (a test checks it), so the train nets cannot drift apart: they differ in the
classification loss layers only.

    python -m examples.detector.prototxt      # rewrite prototxt/detector/ from this file

The net, for a CANVAS x CANVAS grey image:

    backbone   conv1 (16, stride 2)  conv2 (32, stride 2)  conv3 (64) = C2, stride 4
               pool conv4 (64) = C3, stride 8    pool conv5 (64) = C4, stride 16
    pyramid    P4 = lat(C4);  P3 = lat(C3) + up(P4);  P2 = lat(C2) + up(P3)   (FEATURES channels)
    heads      on every level, the SAME weights (Caffe `param { name: ... }`):
               class subnet  conv 3x3 + ReLU, conv 3x3 -> A*C logits, bias b = -log((1-pi)/pi)
               box subnet    conv 3x3 + ReLU, conv 3x3 -> A*4 deltas
    losses     FocalLossLayer per level, normalizer = positives in the batch (3rd bottom), or
               for the OHEM arm one HardNegativeLossLayer over all levels (same normalizer);
               smooth L1 (beta = 0.11) over the positive anchors' deltas, built from layers every
               Caffe has (Eltwise, AbsVal, Power, ReLU, Reduction: no fork's SmoothL1Loss),
               summed over the levels, / max(positives, 1)

Detectron's RetinaNet settings this follows (detectron/core/config.py and its retinanet configs):
RETINANET.LOSS_GAMMA 2, LOSS_ALPHA 0.25, PRIOR_PROB 0.01, BBOX_REG_BETA 0.11, BBOX_REG_WEIGHT 1.0
(the box loss's weight), targets encoded with unit weights (examples.detector.anchors), both losses
divided by the positives. Biases: Detectron's optimizer (detectron/modeling/optimizer.py) gives
every bias no weight decay and twice the learning rate ("to match historical impl. details";
the config keys SOLVER.BIAS_WEIGHT_DECAY False and SOLVER.BIAS_DOUBLE_LR True in later versions),
so every convolution here has `param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2
decay_mult: 0 }`.
"""
import math
import os
from typing import Dict, List

from ..common.protocol import STUDY, committed_solver
from ..common.training import write_prototxts
from .anchors import IGNORE_LABEL, LEVELS, NUM_ANCHORS
from .scenes import CANVAS, NUM_CLASSES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOLDER = os.path.join(REPO, "prototxt", "detector")
FEATURES = 24          # pyramid and head channels (RetinaNet: 256)
HEAD_KERNEL = 3        # the class and box outputs' kernel (RetinaNet: 3)
PRIOR = 0.01           # pi: every anchor starts at foreground probability 0.01
PRIOR_BIAS = -math.log((1 - PRIOR) / PRIOR)
BBOX_REG_BETA = 0.11   # smooth L1's quadratic zone |d| < beta (Detectron's RETINANET value)
BBOX_REG_WEIGHT = 1.0  # the box loss's loss_weight (Detectron's RETINANET.BBOX_REG_WEIGHT)
TRAIN_BATCH = 8
TEST_BATCH = TRAIN_BATCH
# Scenes per split (the tests' quick runs have fewer: examples.detector.experiment).
SCENES = {"train": 800, "val": 192, "test": 320}
VAL_SCENES = SCENES["val"]
FL = {"focusing_parameter": 2, "alpha": 0.25}   # the paper's pick (Table 1b)
FL_GAMMA_1 = {"focusing_parameter": 1, "alpha": 0.25}   # Table 1b's best α at γ = 1
CE = {"focusing_parameter": 0, "alpha": 0.75}   # the paper's best α for CE (Table 1a)
# OHEM as the paper's Table 1d runs it: CE (γ = 0, no α) on every positive anchor and, per image
# across the levels, the 3x as many negatives of highest loss (examples.detector.ohem_layer).
OHEM = {"neg_pos_ratio": 3}
# The arms compared: every loss is divided by the positives in the batch; every class bias
# starts at the prior (the no-prior divergence check trains them with bias 0: prior=False).
LOSSES = {
    "focal": {"label": "FL γ=2, α=0.25", "layer": "FocalLossLayer", "param": FL},
    "ce": {"label": "CE α=0.75 (γ=0)", "layer": "FocalLossLayer", "param": CE},
    "ohem": {"label": "OHEM 1:3 (CE, γ=0, no α)", "layer": "HardNegativeLossLayer",
             "param": OHEM},
    "focal_g1": {"label": "FL γ=1, α=0.25", "layer": "FocalLossLayer", "param": FL_GAMMA_1},
}
# base_lr per arm under the study's protocol (examples.common.protocol.STUDY), each its own
# sweep's pick on the validation split: `make sweep` writes results/study_sweep.json, and a test
# keeps these equal to its picks.
RATES = {"focal": 0.08, "ce": 0.01, "ohem": 0.02, "focal_g1": 0.08}
# The same sweep under the stricter rule of examples.study.sweep.stable_pick (the best rate whose
# double also trained), the study's sensitivity analysis; a test keeps these equal to it too.
STABLE_RATES = {"focal": 0.04, "ce": 0.01, "ohem": 0.02, "focal_g1": 0.04}
# The committed solvers' random_seed (the study sets its own per seed).
SEED = 1701


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
    # Detectron's bias treatment (module docstring): no decay, twice the rate.
    names = (f'name: "{shared}_w"  ', f'name: "{shared}_b"  ') if shared else ("", "")
    params = (f"param {{ {names[0]}lr_mult: 1  decay_mult: 1 }}\n"
              f"param {{ {names[1]}lr_mult: 2  decay_mult: 0 }}\n")
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


def trunk(train: bool, prior: bool = True) -> str:
    """Backbone, pyramid and the shared heads: data -> cls_score_<l>, box_pred_<l> per level.
    train: with weight fillers (the deploy net takes trained weights and needs none);
    prior: the class logits' bias starts at PRIOR_BIAS (else 0)."""
    cls_bias = PRIOR_BIAS if prior else 0.0
    bias_note = (f"Bias: the prior b = -log((1-pi)/pi), pi = {PRIOR}." if prior
                 else "Bias: 0 (no prior initialisation).")
    spatial = {level.name: CANVAS // level.stride for level in LEVELS}
    p2, p3, p4 = (level.name for level in LEVELS)
    parts = [
        _conv("conv1", "data", "conv1", 16, 3, stride=2, train=train,
              comment=f"Backbone. Strided convolutions instead of full-resolution convolutions "
                      f"and pooling: conv2 with pooling was a fifth of an iteration's time. "
                      f"(N, 16, {CANVAS // 2}, {CANVAS // 2})"),
        _conv("conv2", "conv1", "pool2", 32, 3, stride=2, train=train,
              comment=f"(N, 32, {CANVAS // 4}, {CANVAS // 4})"),
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
                  bias=cls_bias, relu=False,
                  comment=f"(N, A*C = {NUM_ANCHORS}*{NUM_CLASSES}, {size}, {size}) logits, channel "
                          f"a*C + c. {bias_note}"),
            _conv(f"box_conv_{name}", name, f"box_conv_{name}", FEATURES, 3, shared="box_conv",
                  train=train, std=0.01, comment=f"Box subnet on {name} (shared weights)."),
            _conv(f"box_pred_{name}", f"box_conv_{name}", f"box_pred_{name}", NUM_ANCHORS * 4,
                  HEAD_KERNEL,
                  shared="box_pred", train=train, std=0.01, relu=False,
                  comment=f"(N, A*4 = {NUM_ANCHORS * 4}, {size}, {size}) deltas, channel a*4 + k"),
        ]
    return "\n".join(parts)


def train_net(key: str, prior: bool = True) -> str:
    """The train/test net of arm `key` (LOSSES); prior: the class bias starts at the prior
    (else 0: the no-prior divergence check's nets, which are not committed)."""
    arm = LOSSES[key]
    name, label = key, arm["label"]
    param = dict(arm["param"], ignore_label=IGNORE_LABEL, num_anchors=NUM_ANCHORS)
    tops = (["data"] + [f"labels_{l.name}" for l in LEVELS]
            + [f"box_targets_{l.name}" for l in LEVELS] + ["num_positives"])
    top_list = "".join(f'  top: "{t}"' for t in tops)
    header = f'''# RetinaNet-lite on synthetic digit scenes, train/test net.
# Classification loss: {label}; class bias {"the prior" if prior else "0"}.
# Written by examples/detector/prototxt.py (python -m examples.detector.prototxt); edit that, not
# this file. The detector's train nets differ in the classification loss layers only.
#
# Paths resolve from the working directory: run from the repository root after `make example`
# has written results/data/detector/:
#   .venv/bin/caffe train --solver=prototxt/detector/solver_{name}_warmup.prototxt
#   .venv/bin/caffe train --solver=prototxt/detector/solver_{name}.prototxt \\
#       --snapshot=results/runs/detector/{name}/warmup_iter_{STUDY.warmup_iter}.solverstate
name: "detector_{name}"

# HDF5 written by examples/detector/data.py (all float32):
#   data (N, 1, {CANVAS}, {CANVAS}) in [0, 1]
#   labels_<l> (N, A, H, W): 0 background, 1..{NUM_CLASSES} digit + 1,
#       {IGNORE_LABEL} ignored (best IoU in [0.4, 0.5))
#   box_targets_<l> (N, A*4, H, W): encoded boxes of the positive anchors (unit weights), 0
#       elsewhere
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
    losses += class_loss_layers(arm["layer"], param)
    for level in LEVELS:
        losses += box_loss_layers(level.name)
    losses += [
        _layer("box_loss_sum", "Eltwise", [f"box_sl1_sum_{l.name}" for l in LEVELS],
               ["box_loss_sum"], "eltwise_param { operation: SUM }",
               "The levels' sums of smooth L1 ..."),
        _layer("positives_minus_1", "Power", ["positives"], ["positives_minus_1"],
               "power_param { shift: -1 }",
               "... / max(positives, 1): 1 / (max(positives - 1, 0) + 1) ..."),
        _layer("positives_minus_1_relu", "ReLU", ["positives_minus_1"], ["positives_minus_1"]),
        _layer("per_positive", "Power", ["positives_minus_1"], ["per_positive"],
               "power_param { shift: 1  power: -1 }"),
        _layer("box_loss", "Eltwise", ["box_loss_sum", "per_positive"], ["box_loss"],
               f"eltwise_param {{ operation: PROD }}\nloss_weight: {BBOX_REG_WEIGHT:g}",
               "Box loss = sum of smooth L1 over the positive anchors' deltas / max(positives, 1),"
               " as the class loss; loss_weight RETINANET.BBOX_REG_WEIGHT."),
    ]
    return header + "\n" + trunk(train=True, prior=prior) + "\n\n" + "\n".join(losses) + "\n"


def class_loss_layers(layer: str, param: dict) -> List[str]:
    """The classification loss: a FocalLossLayer per level, or one HardNegativeLossLayer over
    all levels (its mining ranks the negatives of an image across the levels)."""
    if layer == "HardNegativeLossLayer":
        bottoms = ([f"cls_score_{l.name}" for l in LEVELS] + [f"labels_{l.name}" for l in LEVELS]
                   + ["positives"])
        return [_layer(
            "cls_loss", "Python", bottoms, ["cls_loss"],
            'python_param { module: "examples.detector.ohem_layer"  layer: '
            f'"HardNegativeLossLayer"\n  param_str: "{_param_str(param)}" }}\nloss_weight: 1',
            "Classification loss, OHEM: CE over the positive anchors and each image's 3x hardest "
            "negative anchors of all levels / max(positives, 1).")]
    return [_layer(
        f"cls_loss_{level.name}", "Python",
        [f"cls_score_{level.name}", f"labels_{level.name}", "positives"],
        [f"cls_loss_{level.name}"],
        'python_param { module: "focal_loss_layer"  layer: "FocalLossLayer"\n'
        f'  param_str: "{_param_str(param)}" }}\nloss_weight: 1',
        f"Classification loss on {level.name}: sum over the level's non-ignored class logits / "
        "max(positives, 1).") for level in LEVELS]


def box_loss_layers(name: str, beta: float = BBOX_REG_BETA) -> List[str]:
    """Level `name`: box_pred_<l>, labels_<l>, box_targets_<l> -> box_sl1_sum_<l>, the scalar
    sum over the positive anchors' deltas of smooth L1 with parameter beta,

        sl1(d) = 0.5 d^2 / beta  if |d| < beta,   |d| - 0.5 beta  otherwise,

    from layers every Caffe has: with a = |d|, r = max(a - beta, 0), m = a - r = min(a, beta),
    sl1 = (sqrt(0.5 / beta) m)^2 + r. Off positives both prediction (masked) and target are 0, so
    d = 0 there: no loss, and no gradient (AbsVal's gradient at 0 is 0)."""
    scale = math.sqrt(0.5 / beta)
    return [
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
        _layer(f"box_pred_{name}_positive", "Eltwise",
               [f"box_pred_{name}", f"box_weight_{name}"], [f"box_pred_{name}_positive"],
               "eltwise_param { operation: PROD }", "Deltas of positive anchors, 0 elsewhere."),
        _layer(f"box_diff_{name}", "Eltwise",
               [f"box_pred_{name}_positive", f"box_targets_{name}"], [f"box_diff_{name}"],
               "eltwise_param { operation: SUM  coeff: 1  coeff: -1 }", "d = prediction - target"),
        _layer(f"box_abs_{name}", "AbsVal", [f"box_diff_{name}"], [f"box_abs_{name}"],
               comment="a = |d|"),
        _layer(f"box_excess_{name}", "Power", [f"box_abs_{name}"], [f"box_excess_{name}"],
               f"power_param {{ shift: {-beta:.7g} }}", f"r = max(a - beta, 0), beta = {beta:g}"),
        _layer(f"box_excess_{name}_relu", "ReLU", [f"box_excess_{name}"], [f"box_excess_{name}"]),
        _layer(f"box_small_{name}", "Eltwise", [f"box_abs_{name}", f"box_excess_{name}"],
               [f"box_small_{name}"], "eltwise_param { operation: SUM  coeff: 1  coeff: -1 }",
               "m = a - r = min(a, beta)"),
        _layer(f"box_square_{name}", "Power", [f"box_small_{name}"], [f"box_square_{name}"],
               f"power_param {{ power: 2  scale: {scale:.7g} }}", "0.5 m^2 / beta"),
        _layer(f"box_sl1_{name}", "Eltwise", [f"box_square_{name}", f"box_excess_{name}"],
               [f"box_sl1_{name}"], "eltwise_param { operation: SUM }",
               "smooth L1 per delta: 0.5 m^2 / beta + r"),
        _layer(f"box_sl1_sum_{name}", "Reduction", [f"box_sl1_{name}"], [f"box_sl1_sum_{name}"],
               "reduction_param { operation: SUM }", "summed over the level: a scalar"),
    ]


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


def solver(key: str, warmup: bool) -> str:
    """Arm `key`'s warm-up solver (stage 1) or main solver (stage 2, resumed from stage 1's
    .solverstate) under the study's protocol at its rate (RATES)."""
    fields = STUDY.stages(RATES[key], SEED)["warmup" if warmup else "main"]
    # One test pass = the validation split once; none in the warm-up.
    fields.update(test_iter=-(-VAL_SCENES // TEST_BATCH),
                  test_interval=STUDY.snapshot if not warmup else STUDY.max_iter + 1,
                  test_initialization=False)
    return committed_solver("detector", "RetinaNet-lite", LOSSES[key]["label"], key, fields,
                            warmup, STUDY)


def files() -> Dict[str, str]:
    """File name -> text of everything in prototxt/detector/."""
    out = {"deploy.prototxt": deploy_net()}
    for key in LOSSES:
        out[f"train_{key}.prototxt"] = train_net(key)
        out[f"solver_{key}_warmup.prototxt"] = solver(key, warmup=True)
        out[f"solver_{key}.prototxt"] = solver(key, warmup=False)
    return out


def _param_str(param: dict) -> str:
    return "{" + ", ".join(f"'{k}': {v!r}" for k, v in param.items()) + "}"


def main() -> None:
    write_prototxts(FOLDER, files())


if __name__ == "__main__":
    main()
