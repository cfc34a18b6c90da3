"""Writes prototxt/ssd/: the SSD-lite train/test nets (one per arm), their solvers (a warm-up
stage and the main schedule) and the two deploy nets. The committed files are this module's
output (tests/test_ssd_example.py checks it), so the two train nets cannot drift apart: they
differ in the loss layer and in the conf heads' bias filler only.

    python -m examples.ssd.prototxt      # rewrite prototxt/ssd/ from this file

The net, for a CANVAS x CANVAS grey image, in SSD300's structure (its train.prototxt):

    backbone   conv1 (16, stride 2)  conv2 (32, stride 2)  conv3 (64)  pool
               conv4 (64): stride 8, 12 x 12   pool   conv5 (64): stride 16, 6 x 6
    heads      per level <l> in (conv4, conv5):
               <l>_mbox_loc   conv 3x3 -> 4 priors x 4 box deltas
               <l>_mbox_conf  conv 3x3 -> 4 priors x 11 classes (0 = background)
               each -> Permute (0, 2, 3, 1) -> Flatten (axis 1)
               <l>_mbox_priorbox  PriorBox(<l>, data): min_size, max_size, aspect_ratio 2, flip,
                                  clip false, variance 0.1 0.1 0.2 0.2, step = stride, offset 0.5
    mbox_loc, mbox_conf  Concat axis 1;  mbox_priorbox  Concat axis 2
    loss       arm "multibox": C++ MultiBoxLoss with SSD300's multibox_loss_param (softmax conf
               loss, MAX_NEGATIVE mining 3:1, CENTER_SIZE, PER_PREDICTION, VALID)
               arm "focal": MultiBoxFocalLossLayer, the same fields with conf_loss_type LOGISTIC,
               mining_type NONE, focusing_parameter 2, alpha 0.25; the conf heads' bias starts at
               the prior -log((1 - pi) / pi), pi = 0.01

Every convolution has SSD's `param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }`;
backbone weights msra, head weights xavier (SSD's heads), biases 0 but for the prior.
"""
import json
import math
import os
from dataclasses import dataclass
from typing import Dict, List

from ..common.protocol import STUDY, committed_solver
from ..common.training import write_prototxts
from ..detector.scenes import CANVAS
from ..detector.scenes import NUM_CLASSES as DIGITS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOLDER = os.path.join(REPO, "prototxt", "ssd")
NUM_CLASSES = DIGITS + 1          # background 0, digits 1..10 (digit + 1)
TRAIN_BATCH = 8
TEST_BATCH = 8
DATA_SEED = 1                     # the batches' order (examples.ssd.batches.batch_scenes)
PRIOR = 0.01
PRIOR_BIAS = -math.log((1 - PRIOR) / PRIOR)
VARIANCES = (0.1, 0.1, 0.2, 0.2)
ASPECT_RATIOS = (2,)              # with flip: priors of w/h 2 and 1/2 besides the two squares


@dataclass(frozen=True)
class Level:
    """A feature level with its PriorBox: whole-pixel min_size and max_size (this PriorBox
    truncates them to integers), priors at every `stride` pixels."""

    name: str
    stride: int
    min_size: int
    max_size: int

    @property
    def size(self) -> int:
        return CANVAS // self.stride


# The digits are 10-40 pixels tall, 0.4-1 times as wide: squares of 12 and 17 (= sqrt(12 * 24))
# pixels and 17 x 8.5, 8.5 x 17 at stride 8; of 24 and 34 and 34 x 17, 17 x 34 at stride 16.
LEVELS = (Level("conv4", 8, 12, 24), Level("conv5", 16, 24, 48))
PRIORS_PER_LOCATION = 2 + 2 * len(ASPECT_RATIOS)
NUM_PRIORS = sum(level.size ** 2 for level in LEVELS) * PRIORS_PER_LOCATION

# SSD300's mbox_loss (models/VGGNet/VOC0712/SSD_300x300/train.prototxt), num_classes ours.
MULTIBOX = {"loc_loss_type": "SMOOTH_L1", "conf_loss_type": "SOFTMAX", "loc_weight": 1.0,
            "num_classes": NUM_CLASSES, "share_location": True, "match_type": "PER_PREDICTION",
            "overlap_threshold": 0.5, "use_prior_for_matching": True, "background_label_id": 0,
            "use_difficult_gt": True, "neg_pos_ratio": 3.0, "neg_overlap": 0.5,
            "code_type": "CENTER_SIZE", "ignore_cross_boundary_bbox": False,
            "mining_type": "MAX_NEGATIVE"}
FOCAL = dict(MULTIBOX, conf_loss_type="LOGISTIC", mining_type="NONE", focusing_parameter=2,
             alpha=0.25)
NORMALIZATION = "VALID"
ARMS = {
    "multibox": {"label": "C++ MultiBoxLoss (SSD's)", "layer": "MultiBoxLoss",
                 "settings": MULTIBOX, "prior": False, "conf": "softmax",
                 "summary": "softmax, MAX_NEGATIVE 3:1, bias 0"},
    "focal": {"label": "MultiBoxFocalLossLayer", "layer": "MultiBoxFocalLossLayer",
              "settings": FOCAL, "prior": True, "conf": "sigmoid",
              "summary": "LOGISTIC, γ=2, α=0.25, no mining, prior bias"},
}
# DetectionOutput as SSD's test nets have it (SSD300 VOC: nms 0.45, top_k 400, confidence
# 0.01), keeping the best 100 per image: pycocotools scores at most 100 per image.
DETECTION = {"nms_threshold": 0.45, "top_k": 400, "keep_top_k": 100, "confidence_threshold": 0.01}

# Scenes per split in the full run (the quick run has fewer: examples.ssd.experiment.QUICK_COUNTS).
TRAIN_SCENES, VAL_SCENES, TEST_SCENES = 1000, 192, 320
# base_lr per arm under the study's protocol (examples.common.protocol.STUDY: SGD, momentum 0.9,
# weight decay 1e-4 as the RetinaNet-lite arms, where SSD's VOC solver has 5e-4), each its own
# sweep's pick on the validation split: `make sweep` writes results/study_sweep.json, and a test
# keeps these equal to its picks.
RATES = {"multibox": 0.02, "focal": 0.02}
STABLE_RATES = {"multibox": 0.01, "focal": 0.02}   # examples.study.sweep.stable_pick's
SEED = 1901   # the committed solvers' random_seed (the study sets its own per seed)
# The test phase: SSD's detection eval (11-point VOC mAP at IoU 0.5) in the log.
SOLVER = {"eval_type": "detection", "ap_version": "11point"}


def _layer(name: str, kind: str, bottoms: List[str], tops: List[str], body: str = "",
           comment: str = "", phase: str = "") -> str:
    lines = [f"# {comment}"] if comment else []
    head = f'  name: "{name}"  type: "{kind}"'
    wires = "".join(f'  bottom: "{b}"' for b in bottoms) + "".join(f'  top: "{t}"' for t in tops)
    if phase:
        body = f"include {{ phase: {phase} }}\n" + body
    body_lines = "".join(f"\n  {line}" for line in body.strip().splitlines()) if body else ""
    lines.append("layer {\n" + head + wires + body_lines + "\n}")
    return "\n".join(lines)


def _conv(name, bottom, top, outputs, kernel, *, stride=1, train=True, weights="msra",
          bias=0.0, relu=True, comment=""):
    """Convolution (+ ReLU in place), SSD's parameter multipliers; fillers only in train nets."""
    fillers = (f'\n  weight_filler {{ type: "{weights}" }}'
               f'\n  bias_filler {{ type: "constant" value: {bias:.7g} }}') if train else ""
    body = ("param { lr_mult: 1  decay_mult: 1 }\nparam { lr_mult: 2  decay_mult: 0 }\n"
            f"convolution_param {{ num_output: {outputs}  kernel_size: {kernel}  pad: {kernel // 2}"
            + (f"  stride: {stride}" if stride > 1 else "") + f"{fillers} }}")
    text = _layer(name, "Convolution", [bottom], [top], body, comment)
    if relu:
        text += "\n" + _layer(f"{name}_relu", "ReLU", [top], [top])
    return text


def _pool(name, bottom, top):
    return _layer(name, "Pooling", [bottom], [top],
                  "pooling_param { pool: MAX  kernel_size: 2  stride: 2 }")


def trunk(train: bool, prior: bool = False) -> str:
    """data -> mbox_loc (N, P*4), mbox_conf (N, P*C), mbox_priorbox (1, 2, P*4).
    train: with fillers; prior: the conf heads' bias starts at PRIOR_BIAS (else 0)."""
    s = CANVAS
    parts = [
        _conv("conv1", "data", "conv1", 16, 3, stride=2, train=train,
              comment=f"Backbone (the detector example's). (N, 16, {s // 2}, {s // 2})"),
        _conv("conv2", "conv1", "conv2", 32, 3, stride=2, train=train,
              comment=f"(N, 32, {s // 4}, {s // 4})"),
        _conv("conv3", "conv2", "conv3", 64, 3, train=train, comment="stride 4"),
        _pool("pool3", "conv3", "pool3"),
        _conv("conv4", "pool3", "conv4", 64, 3, train=train,
              comment=f"stride 8: (N, 64, {s // 8}, {s // 8}), the first prediction level"),
        _pool("pool4", "conv4", "pool4"),
        _conv("conv5", "pool4", "conv5", 64, 3, train=train,
              comment=f"stride 16: (N, 64, {s // 16}, {s // 16}), the second prediction level"),
    ]
    bias = PRIOR_BIAS if prior else 0.0
    bias_note = (f"bias the prior -log((1-pi)/pi) = {bias:.5g}, pi = {PRIOR}" if prior
                 else "bias 0 (SSD's)")
    for level in LEVELS:
        name, a = level.name, PRIORS_PER_LOCATION
        for kind, outputs, note in (
                ("loc", a * 4, f"{a} priors x 4 deltas (CENTER_SIZE code)"),
                ("conf", a * NUM_CLASSES, f"{a} priors x {NUM_CLASSES} classes, {bias_note}")):
            head = f"{name}_mbox_{kind}"
            parts += [
                _conv(head, name, head, outputs, 3, train=train, weights="xavier",
                      bias=bias if kind == "conf" else 0.0, relu=False,
                      comment=f"{head}: (N, {outputs}, {level.size}, {level.size}), {note}"),
                _layer(f"{head}_perm", "Permute", [head], [f"{head}_perm"],
                       "permute_param { order: 0  order: 2  order: 3  order: 1 }"),
                _layer(f"{head}_flat", "Flatten", [f"{head}_perm"], [f"{head}_flat"],
                       "flatten_param { axis: 1 }"),
            ]
        ratios = "".join(f"  aspect_ratio: {r:g}" for r in ASPECT_RATIOS)
        variances = "".join(f"  variance: {v:g}" for v in VARIANCES)
        parts.append(_layer(
            f"{name}_mbox_priorbox", "PriorBox", [name, "data"], [f"{name}_mbox_priorbox"],
            f"prior_box_param {{ min_size: {level.min_size}  max_size: {level.max_size}{ratios}"
            f"  flip: true  clip: false\n  {variances.strip()}"
            f"  step: {level.stride}  offset: 0.5 }}",
            f"{level.size ** 2 * a} priors: {level.size} x {level.size} locations x {a}"))
    for kind, axis in (("loc", 1), ("conf", 1), ("priorbox", 2)):
        suffix = "" if kind == "priorbox" else "_flat"
        parts.append(_layer(
            f"mbox_{kind}", "Concat", [f"{l.name}_mbox_{kind}{suffix}" for l in LEVELS],
            [f"mbox_{kind}"], f"concat_param {{ axis: {axis} }}",
            {"loc": f"mbox_loc (N, {NUM_PRIORS * 4})",
             "conf": f"mbox_conf (N, {NUM_PRIORS * NUM_CLASSES}): prior p's classes at p*C..p*C+C-1",
             "priorbox": f"mbox_priorbox (1, 2, {NUM_PRIORS * 4}): boxes, then variances"}[kind]))
    return "\n".join(parts)


def data_layer(split: str, phase: str, shuffle: bool) -> str:
    param = {"source": f"results/data/ssd/{split}.npz",
             "batch_size": TRAIN_BATCH if phase == "TRAIN" else TEST_BATCH,
             "image_size": CANVAS, "shuffle": shuffle, "seed": DATA_SEED}
    return _layer("data", "Python", [], ["data", "label"],
                  'python_param { module: "examples.ssd.data_layer"  layer: "SceneDataLayer"\n'
                  f'  param_str: "{param!r}" }}', phase=phase)


def loss_layer(key: str) -> str:
    """The arm's loss, in the TRAIN phase only, as in SSD's train.prototxt."""
    arm = ARMS[key]
    wiring = ["mbox_loc", "mbox_conf", "mbox_priorbox", "label"]
    propagate = ("propagate_down: true  propagate_down: true  propagate_down: false"
                 "  propagate_down: false")
    if arm["layer"] == "MultiBoxLoss":
        fields = "\n".join(f"  {k}: {_proto_value(v)}" for k, v in arm["settings"].items())
        return _layer("mbox_loss", "MultiBoxLoss", wiring, ["mbox_loss"],
                      f"{propagate}\nloss_param {{ normalization: {NORMALIZATION} }}\n"
                      f"multibox_loss_param {{\n{fields}\n}}",
                      "SSD's loss as SSD300 ships it.", phase="TRAIN")
    settings = dict(arm["settings"], normalization=NORMALIZATION)
    lines = _wrap(json.dumps(settings), 88)
    param = "\n".join(("  param_str: " if i == 0 else "             ") + f"'{line}'"
                      for i, line in enumerate(lines))
    return _layer("mbox_loss", "Python", wiring, ["mbox_loss"],
                  'python_param { module: "focal_loss_layer"  layer: "MultiBoxFocalLossLayer"\n'
                  f"{param} }}\nloss_weight: 1\n{propagate}",
                  "MultiBoxLoss's fields, with focal loss as the conf loss: a sigmoid per class, "
                  "every prior counts (no mining). A Python layer needs loss_weight.",
                  phase="TRAIN")


def detection_layers(conf: str, phase: str = "") -> str:
    """mbox_conf -> per-class scores (conf "softmax": SSD's Reshape, Softmax, Flatten; "sigmoid":
    a Sigmoid, the LOGISTIC conf loss's probabilities) -> DetectionOutput -> detection_out."""
    if conf == "softmax":
        scores = "\n".join([
            _layer("mbox_conf_reshape", "Reshape", ["mbox_conf"], ["mbox_conf_reshape"],
                   f"reshape_param {{ shape {{ dim: 0  dim: -1  dim: {NUM_CLASSES} }} }}",
                   "Scores: a softmax over each prior's classes, as in SSD's test and deploy "
                   "nets.", phase=phase),
            _layer("mbox_conf_softmax", "Softmax", ["mbox_conf_reshape"], ["mbox_conf_softmax"],
                   "softmax_param { axis: 2 }", phase=phase),
            _layer("mbox_conf_flatten", "Flatten", ["mbox_conf_softmax"], ["mbox_conf_scores"],
                   "flatten_param { axis: 1 }", phase=phase)])
    else:
        scores = _layer("mbox_conf_sigmoid", "Sigmoid", ["mbox_conf"], ["mbox_conf_scores"],
                        comment="Scores: a sigmoid per prior and class, the LOGISTIC conf "
                                "loss's probabilities (DetectionOutput reads per-class scores).",
                        phase=phase)
    d = DETECTION
    output = _layer(
        "detection_out", "DetectionOutput", ["mbox_loc", "mbox_conf_scores", "mbox_priorbox"],
        ["detection_out"],
        f"detection_output_param {{ num_classes: {NUM_CLASSES}  share_location: true"
        "  background_label_id: 0\n"
        f"  nms_param {{ nms_threshold: {d['nms_threshold']:g}  top_k: {d['top_k']} }}\n"
        f"  code_type: CENTER_SIZE  keep_top_k: {d['keep_top_k']}"
        f"  confidence_threshold: {d['confidence_threshold']:g} }}",
        "Decode, per-class NMS, the best keep_top_k per image (background skipped): rows [image "
        "id, class, score, xmin, ymin, xmax, ymax].", phase=phase)
    return scores + "\n" + output


def train_net(key: str) -> str:
    arm = ARMS[key]
    header = f'''# SSD-lite on the detector example's textured digit scenes, train/test net.
# Loss: {arm["label"]} ({arm["summary"]}).
# Written by examples/ssd/prototxt.py (python -m examples.ssd.prototxt); edit that, not this
# file. The two train nets differ in the loss layer, the conf heads' bias filler and the
# test phase's scores (softmax or sigmoid) only.
#
# Paths resolve from the working directory: run from the repository root after `make example`
# has written results/data/ssd/ (solver_{key}_warmup, then solver_{key}: see the solvers).
name: "ssd_{key}"

# examples/ssd/data_layer.py: data (N, 1, {CANVAS}, {CANVAS}) in [0, 1]; label (1, 1, G, 8), SSD's
# rows [image id, class 1..{DIGITS}, instance id, xmin, ymin, xmax, ymax, difficult], coordinates
# in [0, 1]. TEST reads the validation split: the test split is scored from pycaffe after training.
'''
    evaluate = _layer(
        "detection_eval", "DetectionEvaluate", ["detection_out", "label"], ["detection_eval"],
        f"detection_evaluate_param {{ num_classes: {NUM_CLASSES}  background_label_id: 0"
        "  overlap_threshold: 0.5  evaluate_difficult_gt: false }",
        "The test phase is SSD's: DetectionOutput, then DetectionEvaluate; the solver's "
        "eval_type \"detection\" logs the validation mAP (IoU 0.5). C++ MultiBoxLoss cannot run "
        "in a test net: it clears its matches in Backward, which a test net never calls.",
        phase="TEST")
    return (header + data_layer("train", "TRAIN", True) + "\n"
            + data_layer("val", "TEST", False) + "\n\n"
            + trunk(train=True, prior=arm["prior"]) + "\n\n" + loss_layer(key) + "\n\n"
            + detection_layers(arm["conf"], phase="TEST") + "\n" + evaluate + "\n")


def deploy_net(conf: str) -> str:
    """conf "softmax" (the MultiBoxLoss arm's) or "sigmoid" (the LOGISTIC arm's)."""
    arm = "C++ MultiBoxLoss (SOFTMAX)" if conf == "softmax" else "MultiBoxFocalLossLayer (LOGISTIC)"
    header = f'''# SSD-lite deploy net for the {arm} arm's weights (layers matched by
# name). Written by examples/ssd/prototxt.py.
# Input: data (N, 1, {CANVAS}, {CANVAS}) in [0, 1]. Output: detection_out (1, 1, K, 7), rows
# [image id, class, score, xmin, ymin, xmax, ymax] with coordinates in [0, 1].
name: "ssd_deploy_{conf}"
layer {{
  name: "data"  type: "Input"  top: "data"
  input_param {{ shape {{ dim: 1  dim: 1  dim: {CANVAS}  dim: {CANVAS} }} }}
}}
'''
    return header + trunk(train=False) + "\n\n" + detection_layers(conf) + "\n"


def solver(key: str, warmup: bool) -> str:
    """The arm's warm-up solver (stage 1) or main solver (stage 2, resumed from stage 1's
    .solverstate) under the study's protocol at its rate (RATES). make example and make study
    run copies of them (examples/ssd/training.py)."""
    fields = dict(STUDY.stages(RATES[key], SEED)["warmup" if warmup else "main"], **SOLVER)
    # One test pass = the validation split once; in the warm-up only at iteration 0.
    fields.update(test_iter=-(-VAL_SCENES // TEST_BATCH),
                  test_interval=STUDY.max_iter + 1 if warmup else STUDY.snapshot,
                  test_initialization=warmup)
    return committed_solver("ssd", "SSD-lite", ARMS[key]["label"], key, fields, warmup, STUDY)


def deploy_name(conf: str) -> str:
    """The deploy net's file name for an arm's conf ("softmax", "sigmoid")."""
    return f"deploy_{conf}.prototxt"


def files() -> Dict[str, str]:
    """File name -> text of everything in prototxt/ssd/."""
    out = {deploy_name(conf): deploy_net(conf) for conf in ("softmax", "sigmoid")}
    for key in ARMS:
        out[f"train_{key}.prototxt"] = train_net(key)
        out[f"solver_{key}_warmup.prototxt"] = solver(key, warmup=True)
        out[f"solver_{key}.prototxt"] = solver(key, warmup=False)
    return out


def _wrap(text: str, width: int) -> List[str]:
    """text cut after ", " into pieces of at most about width characters (prototxt joins
    adjacent strings)."""
    lines, line = [], ""
    for piece in text.split(", "):
        candidate = f"{line}, {piece}" if line else piece
        if line and len(candidate) > width:
            lines.append(line + ", ")
            line = piece
        else:
            line = candidate
    return lines + [line]


def _proto_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def main() -> None:
    write_prototxts(FOLDER, files())


if __name__ == "__main__":
    main()
