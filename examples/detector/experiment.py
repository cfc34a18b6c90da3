"""The detector part of `make example`: data, a learning-rate sweep per loss scored on the
validation split, more seeds at each loss's picked rate, then COCO AP on the test split.

Fairness: both losses train the same net from the same initial weights (random_seed), on the same
batches, with the same solver and schedule; each loss gets as many candidate rates, spaced alike
(factors of 2) around where its best rate lay in development runs, and the one that scores best
on the validation split for it (the test split is never used to choose anything). The sweep's
run at SWEEP_SEED is the first seed of the picked rate, so no run is wasted.

The solver is Adam by default; SGD with momentum, the paper's, is the other choice
(`python -m examples.detector --solver SGD`). In the few minutes of training here Adam took both
nets further than SGD did, focal loss's most: its per-parameter step does not depend on the
gradient's scale, and at the prior initialisation focal loss's gradient is 65 times smaller
than cross-entropy's (examples.detector.initial_gradient).

    run(out_dir, quick, solver, iterations) -> results["detector"] (see the keys set below)
"""
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import Dict, Optional, Tuple

import numpy as np

from ..caffe_log import read_log
from ..progress import note, stage
from ..training import REPO, prepare_run, train
from . import data as detector_data
from .coco_eval import coco_ground_truth, evaluate
from .inference import deploy_outputs, detect
from .log_outputs import read_test_losses
from .prototxt import LOSSES, NUM_CLASSES, TRAIN_BATCH
from .scenes import CANVAS
from .share import anchor_loss_share

NAME = "detector"
TITLE = "detector: RetinaNet-lite on digit scenes, COCO AP"
PROTOTXT = os.path.join(REPO, "prototxt", "detector")
SWEEP_SEED = 1701
FIGURE_IMAGES = 4   # test images drawn with each loss's detections (examples.detector.figures)
DRAW_SCORE = 0.3    # detections drawn from this score up (AP counts every one down to 0.05)


@dataclass(frozen=True)
class Schedule:
    """counts: scenes per split; rates: the sweep's base_lr candidates per solver type and loss;
    seeds: random_seed of the final runs (the first is SWEEP_SEED)."""

    counts: Dict[str, int]
    max_iter: int
    stepsize: int
    test_interval: int
    rates: Dict[str, Dict[str, Tuple[float, ...]]]   # solver type -> loss -> candidates
    seeds: Tuple[int, ...]
    share_images: int   # test images whose anchors the loss-share analysis uses


SOLVERS = ("Adam", "SGD")
# 640 iterations of batch 8, 6.4 epochs of the training scenes: 8 runs of this fit in the
# detector's 10 minutes on 2 cores. Validation loss at 0, half-way and the end.
FULL = Schedule(counts={"train": 800, "val": 160, "test": 320}, max_iter=640, stepsize=480,
                test_interval=320,
                rates={"Adam": {"focal": (0.001, 0.002, 0.004), "ce": (0.002, 0.004, 0.008)},
                       "SGD": {"focal": (0.01, 0.02, 0.04), "ce": (0.0025, 0.005, 0.01)}},
                seeds=(SWEEP_SEED, 1702), share_images=100)
QUICK = Schedule(counts={"train": 64, "val": 16, "test": 16}, max_iter=30, stepsize=20,
                 test_interval=15,
                 rates={"Adam": {"focal": (0.001, 0.002), "ce": (0.002, 0.004)},
                        "SGD": {"focal": (0.01, 0.02), "ce": (0.005, 0.01)}},
                 seeds=(SWEEP_SEED, 1702), share_images=8)


def run(out_dir: str, quick: bool, solver: str = "Adam", iterations: Optional[int] = None) -> Dict:
    """iterations: another schedule length than the mode's (steps at 3/4, validation at 1/2)."""
    started = time.monotonic()
    schedule = QUICK if quick else FULL
    if iterations:
        schedule = replace(schedule, max_iter=iterations, stepsize=iterations * 3 // 4,
                           test_interval=iterations // 2)
    rates = schedule.rates[solver]
    data_dir = os.path.join(out_dir, "data", NAME)
    runs_dir = os.path.join(out_dir, "runs", NAME, solver)
    results = {"title": TITLE, "solver": solver, "rates": {k: list(r) for k, r in rates.items()},
               "schedule": asdict(schedule),
               "losses": {key: {"label": loss["label"], "param": loss["param"]}
                          for key, loss in LOSSES.items()}}

    stage(f"{NAME}: data (synthetic digit scenes, anchors and targets)")
    results["data"] = detector_data.write_data(data_dir, schedule.counts)
    note(describe(results["data"]))

    stage(f"{NAME}: learning-rate sweep ({solver}), seed {SWEEP_SEED}, scored by COCO AP on the "
          "validation split")
    val_gt = _ground_truth(data_dir, "val")
    sweep, trained = {}, {}
    count = sum(len(rates[key]) for key in LOSSES)
    for number, (key, rate) in enumerate(((k, r) for k in LOSSES for r in rates[k]), 1):
        run_info = _train(key, solver, rate, SWEEP_SEED, schedule, data_dir, runs_dir,
                          f"sweep {number}/{count} {LOSSES[key]['label']} lr {rate:g}")
        run_info["val"] = _score(run_info, data_dir, "val", val_gt)
        sweep.setdefault(key, []).append({"base_lr": rate, "diverged": run_info["diverged"],
                                          **_headline(run_info["val"])})
        trained[key, rate, SWEEP_SEED] = run_info
        note(f"{LOSSES[key]['label']} lr {rate:g}: "
             + ("diverged (the layer stopped Caffe at non-finite logits): AP 0"
                if run_info["diverged"] else f"validation AP {run_info['val']['AP']:.3f}, "
                                             f"AP50 {run_info['val']['AP50']:.3f}"))
    # The best validation AP; a diverged run scores 0, so it is picked only if every rate diverged.
    picked = {key: max(points, key=lambda p: p["AP"])["base_lr"] for key, points in sweep.items()}
    results["sweep"] = {"seed": SWEEP_SEED, "split": "val", "points": sweep, "picked": picked}
    note("picked: " + ", ".join(f"{LOSSES[k]['label']} lr {r:g}" for k, r in picked.items()))

    extra = [(key, seed) for key in LOSSES for seed in schedule.seeds if seed != SWEEP_SEED]
    if extra:
        seeds = ", ".join(str(s) for s in schedule.seeds)
        stage(f"{NAME}: seeds {seeds} at each loss's picked rate")
    for number, (key, seed) in enumerate(extra, 1):
        trained[key, picked[key], seed] = _train(
            key, solver, picked[key], seed, schedule, data_dir, runs_dir,
            f"seed {number}/{len(extra)} {LOSSES[key]['label']} lr {picked[key]:g} seed {seed}")

    stage(f"{NAME}: test split, COCO AP from pycocotools (deploy net, decode, per-class NMS)")
    test_gt = _ground_truth(data_dir, "test")
    results["runs"] = {}
    for key in LOSSES:
        runs = []
        for seed in schedule.seeds:
            run_info = trained[key, picked[key], seed]
            run_info["test"] = _score(run_info, data_dir, "test", test_gt,
                                      keep_detections=seed == SWEEP_SEED)
            runs.append(run_info)
            note(f"{LOSSES[key]['label']} seed {seed}: test AP {run_info['test']['AP']:.3f}, "
                 f"AP50 {run_info['test']['AP50']:.3f}, AP75 {run_info['test']['AP75']:.3f}")
        results["runs"][key] = _summary(runs)

    stage(f"{NAME}: loss share of the trained nets' test anchors (the paper's Figure 4)")
    for key in LOSSES:
        run_info = trained[key, picked[key], SWEEP_SEED]
        if run_info["diverged"]:   # every rate diverged: no trained net to analyse
            results["runs"][key]["loss_share"] = None
            continue
        results["runs"][key]["loss_share"] = anchor_loss_share(
            os.path.join(PROTOTXT, "deploy.prototxt"), run_info["weights"], data_dir,
            schedule.share_images)
        easiest = results["runs"][key]["loss_share"]["negatives"]["easiest"]
        note(f"{LOSSES[key]['label']} net: easiest 90% of negative anchors carry "
             f"{100 * easiest['0.0']['0.9']:.2f}% of CE (γ=0), {100 * easiest['2.0']['0.9']:.4f}% "
             f"of FL (γ=2)")
    results["wall_time_seconds"] = time.monotonic() - started
    note(f"the detector part took {results['wall_time_seconds']:.0f}s")
    return results


def describe(stats: Dict) -> str:
    train = stats["train"]
    return (f"{stats['train']['scenes']} / {stats['val']['scenes']} / {stats['test']['scenes']} "
            f"scenes (train / val / test, digits from disjoint source images: "
            f"{stats['source_digits']['train']} / {stats['source_digits']['val']} / "
            f"{stats['source_digits']['test']}); {stats['anchors_per_image']:,} anchors per image; "
            f"train: {train['positives_per_image']:.1f} positive anchors per image, positives "
            f"1 in {1 / train['positive_logit_share']:,.0f} class logits, "
            f"{100 * train['ignored_anchor_share']:.2f}% of anchors ignored")


def _train(key: str, solver: str, rate: float, seed: int, schedule: Schedule, data_dir: str,
           runs_dir: str, title: str) -> Dict:
    """One `caffe train` run of loss `key` with solver type `solver` at base_lr `rate` and
    random_seed `seed`."""
    run_dir = os.path.join(runs_dir, key, f"lr{rate:g}_seed{seed}")
    val_batches = -(-schedule.counts["val"] // TRAIN_BATCH)
    run = prepare_run(os.path.join(PROTOTXT, f"solver_{key}.prototxt"), data_dir, run_dir,
                      {"type": solver, "base_lr": rate, "random_seed": seed,
                       "max_iter": schedule.max_iter,
                       "stepsize": schedule.stepsize, "test_interval": schedule.test_interval})
    _set_test_iter(run.solver, val_batches)   # one test pass = the validation split once
    started = time.monotonic()
    diverged = False
    try:
        train_curve = [list(p) for p in train(run, title.ljust(44)).train]
    except RuntimeError as failure:
        # A rate too high for a loss is a result of the sweep, not an error: the layer stops
        # Caffe at the first non-finite logit. Any other failure is an error.
        if "non-finite" not in str(failure):
            raise
        diverged, train_curve = True, [list(p) for p in read_log(run.log).train]
    return {"key": key, "base_lr": rate, "seed": seed, "weights": run.weights,
            "diverged": diverged, "train_seconds": time.monotonic() - started,
            "iterations": run.max_iter,
            "curves": {"train": train_curve,
                       "test": [list(p) for p in read_test_losses(run.log)["total"]]}}


def _set_test_iter(solver_path: str, test_iter: int) -> None:
    """prepare_run sets scalar fields only; test_iter is a repeated field."""
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format
    solver = caffe_pb2.SolverParameter()
    with open(solver_path) as f:
        text_format.Merge(f.read(), solver)
    del solver.test_iter[:]
    solver.test_iter.append(test_iter)
    with open(solver_path, "w") as f:
        f.write(text_format.MessageToString(solver))


def _ground_truth(data_dir: str, split: str):
    images, boxes, classes = detector_data.read_split(data_dir, split)
    return images, boxes, classes, coco_ground_truth(boxes, classes, CANVAS, NUM_CLASSES)


def _score(run_info: Dict, data_dir: str, split: str, ground_truth, keep_detections=False) -> Dict:
    """COCO metrics of a trained net on a split (all 0 for a run that diverged); with
    keep_detections, also the confident detections of the first images (for the figure)."""
    images, _, _, gt = ground_truth
    if run_info["diverged"]:
        detections = [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0),
                       "classes": np.zeros(0, np.int64)} for _ in images]
    else:
        outputs = deploy_outputs(os.path.join(PROTOTXT, "deploy.prototxt"), run_info["weights"],
                                 images)
        detections = detect(outputs, CANVAS, NUM_CLASSES)
    metrics = evaluate(gt, detections)
    if keep_detections:
        metrics["detections"] = [{name: value[d["scores"] >= DRAW_SCORE].tolist()
                                  for name, value in d.items()}
                                 for d in detections[:FIGURE_IMAGES]]
    return metrics


def _headline(metrics: Dict) -> Dict:
    return {key: metrics[key] for key in ("AP", "AP50", "AP75")}


def _summary(runs) -> Dict:
    """Per loss: each seed's numbers, and mean / sample standard deviation / min / max of
    AP, AP50, AP75 over seeds; per-class AP and the PR curve averaged over seeds."""
    out = {"seeds": [], "base_lr": runs[0]["base_lr"]}
    for r in runs:
        out["seeds"].append({"seed": r["seed"], "diverged": r["diverged"],
                             "train_seconds": r["train_seconds"],
                             "iterations": r["iterations"], "curves": r["curves"],
                             "val": _headline(r["val"]) if "val" in r else None,
                             **_headline(r["test"])})
    for metric in ("AP", "AP50", "AP75"):
        values = np.array([r["test"][metric] for r in runs])
        out[metric] = {"mean": float(values.mean()),
                       "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                       "min": float(values.min()), "max": float(values.max())}
    out["ap_per_class"] = np.nanmean([r["test"]["ap_per_class"] for r in runs], axis=0).tolist()
    out["pr50"] = {"recall": runs[0]["test"]["pr50"]["recall"],
                   "precision": np.mean([r["test"]["pr50"]["precision"] for r in runs],
                                        axis=0).tolist()}
    out["detections"] = runs[0]["test"].get("detections")
    return out
