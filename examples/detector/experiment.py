"""RetinaNet-lite as a net of the study (examples.study): its data, one run of an arm prepared
for `caffe train` under a protocol (examples.common.protocol), and scoring by COCO AP.

Fairness: every arm trains the same net from the same initial weights (random_seed) on the same
batches in the same order, under the same protocol; arms differ in the classification loss
layer (prototxt.LOSSES) and their base_lr (each its own sweep's pick) only.

    write_data(data_dir, counts)                              -> statistics of the scenes
    prepare(key, rate, seed, protocol, data_dir, run_dir, prior=True) -> a two-stage Run
    score(data_dir, split, weights, key)                      -> COCO AP, AP50, AP75, ...
"""
import os
from functools import lru_cache
from typing import Dict, Optional

import numpy as np

from ..common.protocol import Protocol
from ..common.training import REPO, Run, prepare_stages
from . import data as detector_data
from .coco_eval import coco_ground_truth, evaluate
from .inference import deploy_outputs, detect
from .prototxt import LOSSES, NUM_CLASSES, SCENES, TRAIN_BATCH, train_net
from .prototxt import RATES as RATES  # base_lr per arm (the sweep's picks), for examples.study
from .prototxt import STABLE_RATES as STABLE_RATES  # the sensitivity analysis's
from .scenes import CANVAS

NAME = "detector"
TITLE = "RetinaNet-lite on textured digit scenes"
ARMS = LOSSES

PROTOTXT = os.path.join(REPO, "prototxt", NAME)
DEPLOY = os.path.join(PROTOTXT, "deploy.prototxt")
# Scenes per split: the study's, and the tests' (--quick).
COUNTS = SCENES
QUICK_COUNTS = {"train": 64, "val": 16, "test": 16}
SHARE_IMAGES, SHARE_IMAGES_QUICK = 100, 8   # test images of the loss-share analysis
FIGURE_IMAGES = 4   # test images drawn with each arm's detections (examples.study.figures)
DRAW_SCORE = 0.3    # detections drawn from this score up (AP counts every one down to 0.05)


def write_data(data_dir: str, counts: Dict[str, int]) -> Dict:
    stats = detector_data.write_data(data_dir, counts)
    stats["summary"] = describe(stats)
    return stats


def describe(stats: Dict) -> str:
    train = stats["train"]
    anchors = train["anchors"]
    return (f"{stats['train']['scenes']} / {stats['val']['scenes']} / {stats['test']['scenes']} "
            f"scenes (train / val / test, digits and backgrounds from disjoint sources); "
            f"{stats['anchors_per_image']:,} anchors per image; train: "
            f"{train['positives_per_image']:.1f} positive anchors per image, "
            f"{anchors['negatives_per_positive']:.0f} negatives per positive, positives 1 in "
            f"{1 / train['positive_logit_share']:,.0f} class logits; negative anchors nearly "
            f"blank {100 * anchors['negative_share_nearly_blank']:.1f}%, without ink "
            f"{100 * anchors['negative_share_without_ink']:.1f}%")


def prepare(key: str, rate: float, seed: int, protocol: Protocol, data_dir: str, run_dir: str,
            prior: bool = True, stop: Optional[int] = None) -> Run:
    """Arm `key`'s committed solver and net (prior=False: the net with the class bias at 0,
    written into run_dir) under the protocol at base_lr `rate`, random_seed `seed`; a
    validation pass (the split once) at every snapshot."""
    stages = protocol.stages(rate, seed, stop)
    val_batches = -(-_count(data_dir, "val") // TRAIN_BATCH)
    stages["warmup"].update(test_interval=protocol.max_iter + 1, test_initialization=False,
                            test_iter=[val_batches])
    stages["main"].update(test_interval=protocol.snapshot, test_initialization=False,
                          test_iter=[val_batches])
    template = os.path.join(PROTOTXT, f"solver_{key}.prototxt")
    net = None if prior else train_net(key, prior=False)
    return prepare_stages(template, data_dir, run_dir, stages, net_text=net)


def score(data_dir: str, split: str, weights: str, key: str) -> Dict:
    """COCO metrics of arm `key`'s trained weights on a split (every arm has the same deploy
    net), with the per-image detections ("detections", for the paired bootstrap and the
    figure)."""
    images, ground_truth = _split(os.path.abspath(data_dir), split)
    detections = detect(deploy_outputs(DEPLOY, weights, images), CANVAS, NUM_CLASSES)
    metrics = evaluate(ground_truth, detections)
    metrics["detections"] = detections
    return metrics


def ground_truth(data_dir: str, split: str):
    """The split's pycocotools ground truth (for examples.common.bootstrap)."""
    return _split(os.path.abspath(data_dir), split)[1]


@lru_cache(maxsize=4)
def _split(data_dir: str, split: str):
    images, boxes, classes = detector_data.read_split(data_dir, split)
    return images, coco_ground_truth(boxes, classes, CANVAS, NUM_CLASSES)


def _count(data_dir: str, split: str) -> int:
    return len(_split(os.path.abspath(data_dir), split)[0])


def drawn(detections, count: int = FIGURE_IMAGES):
    """The confident detections of the first test images, as lists (for results and figures)."""
    return [{name: np.asarray(value)[np.asarray(d["scores"]) >= DRAW_SCORE].tolist()
             for name, value in d.items()} for d in detections[:count]]
