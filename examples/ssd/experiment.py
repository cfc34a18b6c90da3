"""The SSD-lite example (`python -m examples.run_all --only ssd`, part of `make example`): the
scenes, then each arm of prototxt.ARMS trained by `caffe train` (warm-up, then the main
schedule) and scored on the test split by DetectionOutput and pycocotools.

A demonstration of both loss layers in one SSD net, with one seed per arm: the two arms differ
in their loss and its settings (softmax with 3:1 mining against a sigmoid focal loss without
mining), their conf heads' initial bias and the scores DetectionOutput ranks, and nothing here
measures which loss is better (docs/examples.md, "SSD-lite"). Both arms start from the same
weights but for the conf biases (one random_seed) and see the same batches (one data seed).

    run(out_dir, quick)        -> results["ssd"]
    lr_sweep(out_dir, quick)   -> the rate sweep behind prototxt.RATES (python -m examples.ssd
                                  --lr-sweep), validation AP
"""
import os
import time
from dataclasses import asdict, dataclass
from typing import Dict, Tuple

import numpy as np

from ..common.progress import note, stage
from . import prototxt as ssd_prototxt
from . import training
from .batches import path_of, read_split
from .data import write_data
from .prototxt import ARMS, NORMALIZATION, RATES, WARMUP_FROM
from .scoring import score

NAME = "ssd"
TITLE = ("ssd: SSD-lite on textured digit scenes, C++ MultiBoxLoss and MultiBoxFocalLossLayer "
         "in one net")
DEMONSTRATION = ("a demonstration of both layers in one SSD net: one seed per arm, not a "
                 "comparison of the losses")
METRICS = ("AP", "AP50", "AP75")
# The rate sweep (python -m examples.ssd --lr-sweep): four rates a factor of 2 apart per arm.
SWEEP_RATES = {"multibox": (0.005, 0.01, 0.02, 0.04), "focal": (0.005, 0.01, 0.02, 0.04)}


@dataclass(frozen=True)
class Schedule:
    """counts: scenes per split; warmup_iter, max_iter: the two stages' last iterations;
    stepvalues: the main stage's rate drops (x0.1); test_interval: validation loss every."""

    counts: Dict[str, int]
    warmup_iter: int
    max_iter: int
    stepvalues: Tuple[int, ...]
    test_interval: int
    display: int = ssd_prototxt.SOLVER["display"]    # training loss logged every


FULL = Schedule(counts={"train": ssd_prototxt.TRAIN_SCENES, "val": ssd_prototxt.VAL_SCENES,
                        "test": ssd_prototxt.TEST_SCENES},
                warmup_iter=ssd_prototxt.WARMUP_ITER, max_iter=ssd_prototxt.MAX_ITER,
                stepvalues=ssd_prototxt.STEPVALUES, test_interval=ssd_prototxt.TEST_INTERVAL)
QUICK = Schedule(counts={"train": 48, "val": 16, "test": 16}, warmup_iter=4, max_iter=16,
                 stepvalues=(12,), test_interval=8, display=2)


def run(out_dir: str, quick: bool) -> Dict:
    """Both arms at their rates (prototxt.RATES); results["ssd"]."""
    started = time.monotonic()
    schedule = QUICK if quick else FULL
    data_dir = os.path.join(out_dir, "data", NAME)
    results = _header(schedule)
    results["data"] = _write_data(data_dir, schedule)
    test = read_split(path_of(data_dir, "test"))
    stage(f"{NAME}: 2 arms ({DEMONSTRATION}), SGD, {schedule.warmup_iter} warm-up + "
          f"{schedule.max_iter - schedule.warmup_iter} iterations each")
    for number, key in enumerate(ARMS, 1):
        arm = _train(key, RATES[key], schedule, data_dir, os.path.join(out_dir, "runs", NAME, key),
                     f"{number}/{len(ARMS)} {ARMS[key]['label']}")
        arm["test"] = score(_deploy(key), arm.pop("weights"), test)
        results["arms"][key] = arm
        t = arm["test"]
        note(f"{ARMS[key]['label']}: training loss {arm['first_train_loss']:.3g} -> "
             f"{arm['last_train_loss']:.3g}; test AP {t['AP']:.3f}, AP50 {t['AP50']:.3f}, "
             f"AP75 {t['AP75']:.3f} ({t['detection_output']['per_image']:.1f} detections per "
             "image from DetectionOutput)")
    results["wall_time_seconds"] = time.monotonic() - started
    note(f"the ssd part took {results['wall_time_seconds']:.0f}s")
    return results


def lr_sweep(out_dir: str, quick: bool) -> Dict:
    """Each arm at each of SWEEP_RATES, scored by COCO AP on the validation split; per arm the
    best rate is the pick (prototxt.RATES holds the committed picks)."""
    schedule = QUICK if quick else FULL
    rates = {key: r[:2] for key, r in SWEEP_RATES.items()} if quick else SWEEP_RATES
    data_dir = os.path.join(out_dir, "data", NAME)
    results = _header(schedule)
    results.update(data=_write_data(data_dir, schedule), split="val", rates_in_code=dict(RATES))
    val = read_split(path_of(data_dir, "val"))
    jobs = [(key, rate) for key in rates for rate in rates[key]]
    stage(f"{NAME}: learning-rate sweep, {len(jobs)} runs, COCO AP on the validation split")
    points: Dict[str, list] = {key: [] for key in rates}
    for number, (key, rate) in enumerate(jobs, 1):
        arm = _train(key, rate, schedule, data_dir,
                     os.path.join(out_dir, "runs", f"{NAME}_lr_sweep", key, f"lr{rate:g}"),
                     f"{number}/{len(jobs)} {ARMS[key]['label']} lr {rate:g}")
        metrics = score(_deploy(key), arm["weights"], val)
        points[key].append({"base_lr": rate, "train_seconds": arm["train_seconds"],
                            "first_train_loss": arm["first_train_loss"],
                            "last_train_loss": arm["last_train_loss"],
                            **{m: metrics[m] for m in METRICS}})
        note(f"{ARMS[key]['label']} lr {rate:g}: validation AP {metrics['AP']:.3f}")
    results["points"] = points
    results["picked"] = {key: max(pts, key=lambda p: p["AP"])["base_lr"]
                         for key, pts in points.items()}
    note("picked (best validation AP): " + ", ".join(
        f"{ARMS[k]['label']} lr {r:g}" for k, r in results["picked"].items()))
    return results


def _header(schedule: Schedule) -> Dict:
    return {"title": TITLE, "demonstration": DEMONSTRATION, "solver": "SGD",
            "schedule": asdict(schedule), "warmup_from": WARMUP_FROM,
            "normalization": NORMALIZATION,
            "net": {"priors": ssd_prototxt.NUM_PRIORS, "classes": ssd_prototxt.NUM_CLASSES,
                    "levels": [asdict(level) for level in ssd_prototxt.LEVELS],
                    "aspect_ratios": list(ssd_prototxt.ASPECT_RATIOS),
                    "variances": list(ssd_prototxt.VARIANCES),
                    "detection_output": dict(ssd_prototxt.DETECTION)},
            "arms": {}}


def _write_data(data_dir: str, schedule: Schedule) -> Dict:
    stage(f"{NAME}: data (the detector's textured digit scenes, SSD's label rows)")
    stats = write_data(data_dir, schedule.counts)
    stats["matching"] = prior_matching(read_split(path_of(data_dir, "train")))
    m = stats["matching"]
    note(f"{stats['train']['scenes']} / {stats['val']['scenes']} / {stats['test']['scenes']} "
         f"scenes (train / val / test); {ssd_prototxt.NUM_PRIORS} priors per image (Caffe's "
         f"PriorBox); train: {m['objects_per_image']:.2f} objects and "
         f"{m['matched_priors_per_image']:.1f} matched priors per image, 1 prior in "
         f"{1 / m['matched_prior_share']:.0f}; objects whose best prior has IoU >= 0.5: "
         f"{100 * m['objects_with_a_prior_over_threshold']:.0f}%")
    return stats


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


def _deploy(key: str) -> str:
    return os.path.join(ssd_prototxt.FOLDER, ssd_prototxt.deploy_name(ARMS[key]["conf"]))


def _train(key: str, rate: float, schedule: Schedule, data_dir: str, run_dir: str,
           title: str) -> Dict:
    """One arm through both solver stages; its curves and final weights."""
    val_batches = -(-schedule.counts["val"] // ssd_prototxt.TEST_BATCH)
    logging = {"display": schedule.display, "average_loss": schedule.display}
    overrides = {
        "warmup": {**logging, "base_lr": rate * WARMUP_FROM, "max_iter": schedule.warmup_iter,
                   "gamma": (1 / WARMUP_FROM - 1) / schedule.warmup_iter,
                   "test_iter": [val_batches], "test_interval": schedule.max_iter},
        "main": {**logging, "base_lr": rate, "max_iter": schedule.max_iter,
                 "stepvalue": list(schedule.stepvalues), "test_iter": [val_batches],
                 "test_interval": schedule.test_interval}}
    run = training.prepare(key, data_dir, run_dir, overrides)
    started = time.monotonic()
    curves = training.train(run, title.ljust(44))
    losses = [loss for _, loss in curves.train]
    return {"label": ARMS[key]["label"], "layer": ARMS[key]["layer"],
            "summary": ARMS[key]["summary"],
            "settings": dict(ARMS[key]["settings"], normalization=NORMALIZATION),
            "prior_bias": ARMS[key]["prior"], "base_lr": rate,
            "train_seconds": time.monotonic() - started, "iterations": schedule.max_iter,
            "first_train_loss": losses[0], "last_train_loss": losses[-1],
            "all_losses_finite": bool(np.all(np.isfinite(losses))),
            "curves": {"train": [list(p) for p in curves.train],
                       "val_mAP": training.read_detection_eval(run.log)},
            "weights": run.weights}
