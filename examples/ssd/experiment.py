"""SSD-lite as a net of the study (examples.study): its data, one run of an arm prepared for
`caffe train` under a protocol (examples.common.protocol: a warm-up stage, then the main
schedule), and scoring by DetectionOutput and COCO AP.

The arms (prototxt.ARMS) differ in their loss and its settings (softmax with 3:1 mining against
a sigmoid focal loss without mining), their conf heads' initial bias and the scores
DetectionOutput ranks, and their base_lr (each its own sweep's pick). Both arms of a seed start
from the same weights but for the conf biases (random_seed) and see the same batches (one data
seed).

    write_data(data_dir, counts)                                -> statistics of the scenes
    prepare(key, rate, seed, protocol, data_dir, run_dir)       -> a two-stage Run
    score(data_dir, split, weights, key)                        -> COCO AP, AP50, AP75, ...
"""
import os
from dataclasses import asdict
from functools import lru_cache
from typing import Dict, Optional

import numpy as np

from ..common.protocol import Protocol
from ..detector.coco_eval import coco_ground_truth
from . import prototxt as ssd_prototxt
from . import training
from .batches import ground_truth as split_ground_truth
from .batches import path_of, read_split
from .data import write_data as write_scenes
from .prototxt import ARMS, DIGITS
from .prototxt import RATES as RATES  # base_lr per arm (the sweep's picks), for examples.study
from .prototxt import STABLE_RATES as STABLE_RATES  # the sensitivity analysis's
from .scoring import score as score_split

NAME = "ssd"
TITLE = "SSD-lite on textured digit scenes"
COUNTS = {"train": ssd_prototxt.TRAIN_SCENES, "val": ssd_prototxt.VAL_SCENES,
          "test": ssd_prototxt.TEST_SCENES}
QUICK_COUNTS = {"train": 48, "val": 16, "test": 16}


def write_data(data_dir: str, counts: Dict[str, int]) -> Dict:
    stats = write_scenes(data_dir, counts)
    stats["matching"] = prior_matching(read_split(path_of(data_dir, "train")))
    m = stats["matching"]
    stats["summary"] = (
        f"{stats['train']['scenes']} / {stats['val']['scenes']} / {stats['test']['scenes']} "
        f"scenes (train / val / test); {ssd_prototxt.NUM_PRIORS} priors per image (Caffe's "
        f"PriorBox); train: {m['objects_per_image']:.2f} objects and "
        f"{m['matched_priors_per_image']:.1f} matched priors per image, 1 prior in "
        f"{1 / m['matched_prior_share']:.0f}; objects whose best prior has IoU >= 0.5: "
        f"{100 * m['objects_with_a_prior_over_threshold']:.0f}%")
    return stats


def net_summary() -> Dict:
    """The net's settings for the report."""
    return {"priors": ssd_prototxt.NUM_PRIORS, "classes": ssd_prototxt.NUM_CLASSES,
            "levels": [asdict(level) for level in ssd_prototxt.LEVELS],
            "aspect_ratios": list(ssd_prototxt.ASPECT_RATIOS),
            "variances": list(ssd_prototxt.VARIANCES),
            "detection_output": dict(ssd_prototxt.DETECTION),
            "normalization": ssd_prototxt.NORMALIZATION}


def prior_matching(split: Dict[str, np.ndarray]) -> Dict:
    """How SSD's matching (focal_loss_layer.multibox, PER_PREDICTION at 0.5, as both arms) meets
    the scenes: Caffe's priors from the deploy net's PriorBox layers, then per training image
    the matched priors (the positives; VALID normalises by their count)."""
    import caffe

    from focal_loss_layer import multibox

    caffe.set_mode_cpu()
    net = caffe.Net(_deploy("multibox"), caffe.TEST)
    net.forward()
    priors = net.blobs["mbox_priorbox"].data[0, 0].reshape(-1, 4).copy()
    height, width = split["images"].shape[2:]
    scale = np.array([width, height, width, height], np.float32)
    matched, best = [], []
    for image in range(len(split["images"])):
        boxes = split["boxes"][split["image"] == image] / scale
        if not len(boxes):
            matched.append(0)
            continue
        overlap = multibox.overlaps(priors, boxes)
        match, _ = multibox.match_priors(overlap, "PER_PREDICTION", 0.5,
                                         np.zeros(len(priors), bool))
        matched.append(int(np.count_nonzero(match >= 0)))
        best += overlap.max(axis=0).tolist()
    images = len(split["images"])
    return {"priors": int(len(priors)), "objects_per_image": len(best) / images,
            "matched_priors_per_image": float(np.mean(matched)),
            "matched_prior_share": float(np.sum(matched) / (images * len(priors))),
            "objects_with_a_prior_over_threshold": float(np.mean(np.array(best) >= 0.5))}


def prepare(key: str, rate: float, seed: int, protocol: Protocol, data_dir: str, run_dir: str,
            prior: bool = True, stop: Optional[int] = None) -> training.Run:
    """Arm `key`'s committed solvers and net under the protocol at base_lr `rate`, random_seed
    `seed`; SSD's detection eval on the validation split at every snapshot. SSD-lite's arms
    have no no-prior variant (prior must be True)."""
    if not prior:
        raise ValueError("SSD-lite's arms have no variant without the prior bias")
    val_batches = -(-len(_split(os.path.abspath(data_dir), "val")[0]) // ssd_prototxt.TEST_BATCH)
    stages = protocol.stages(rate, seed, stop)
    stages["warmup"].update(test_iter=[val_batches], test_interval=protocol.max_iter + 1,
                            test_initialization=False)
    stages["main"].update(test_iter=[val_batches], test_interval=protocol.snapshot)
    return training.prepare(key, data_dir, run_dir, stages)


def score(data_dir: str, split: str, weights: str, key: str) -> Dict:
    """COCO metrics of arm `key`'s trained weights on a split, with the per-image detections
    ("detections", for the paired bootstrap)."""
    return score_split(_deploy(key), weights, read_split(path_of(data_dir, split)))


def ground_truth(data_dir: str, split: str):
    """The split's pycocotools ground truth (for examples.common.bootstrap)."""
    return _split(os.path.abspath(data_dir), split)[1]


@lru_cache(maxsize=4)
def _split(data_dir: str, split: str):
    arrays = read_split(path_of(data_dir, split))
    boxes, classes = split_ground_truth(arrays)
    return arrays["images"], coco_ground_truth(boxes, classes, arrays["images"].shape[-1], DIGITS)


def _deploy(key: str) -> str:
    return os.path.join(ssd_prototxt.FOLDER, ssd_prototxt.deploy_name(ARMS[key]["conf"]))
