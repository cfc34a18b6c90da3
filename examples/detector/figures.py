"""The detector's PNG figures, drawn from results["detector"] (examples.detector.experiment) and,
for the pictures, the test images in out_dir/data/detector/.

    detector_detections.png   test images with each loss's detections (and the ground truth)
    detector_ap.png           the validation sweep, per-class AP, precision-recall at IoU 0.5
    detector_loss_curves.png  train and validation loss of every final run
    detector_loss_share.png   the paper's Figure 4 on the detector's test anchors
"""
import os
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")   # files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..plots import plot_loss_share  # noqa: E402
from .data import read_split  # noqa: E402
from .experiment import DRAW_SCORE, NAME  # noqa: E402
from .nms import nms  # noqa: E402

COLORS = {"focal": "tab:blue", "ce": "tab:red"}
DISPLAY_IOU = 0.5


def write_figures(results: Dict, out_dir: str) -> List[str]:
    return [_detections(results, out_dir, os.path.join(out_dir, "detector_detections.png")),
            _ap(results, os.path.join(out_dir, "detector_ap.png")),
            _loss_curves(results, os.path.join(out_dir, "detector_loss_curves.png")),
            _loss_share(results, os.path.join(out_dir, "detector_loss_share.png"))]


def _label(results: Dict, key: str) -> str:
    return results["losses"][key]["label"]


def _detections(results: Dict, out_dir: str, path: str) -> str:
    images, boxes, classes = read_split(os.path.join(out_dir, "data", NAME), "test")
    runs = results["runs"]
    count = len(next(iter(runs.values()))["detections"])
    fig, axes = plt.subplots(len(runs), count, figsize=(3.2 * count, 3.5 * len(runs)),
                             squeeze=False)
    for row, (key, run) in zip(axes, runs.items()):
        for i, (ax, found) in enumerate(zip(row, run["detections"])):
            ax.imshow(images[i, 0], cmap="gray", vmin=0, vmax=1)
            for (x1, y1, x2, y2), c in zip(boxes[i], classes[i]):
                # Pixel j spans [j, j + 1), imshow centres it on j: shift by half a pixel.
                ax.add_patch(plt.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False,
                                           edgecolor="lime", linestyle="--", linewidth=1))
                ax.text(x1 - 0.5, y2 + 0.5, str(c - 1), color="lime", fontsize=7, va="top")
            boxes_found = np.asarray(found["boxes"], float).reshape(-1, 4)
            scores = np.asarray(found["scores"], float)
            # One box per place for the picture (the scoring keeps every class's): the best
            # class wins, and lower-scoring boxes of other classes on the same digit are not
            # drawn over it.
            shown = nms(boxes_found, scores, DISPLAY_IOU)
            for (x1, y1, x2, y2), score, c in zip(boxes_found[shown], scores[shown],
                                                  np.asarray(found["classes"])[shown]):
                ax.add_patch(plt.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False,
                                           edgecolor=COLORS[key], linewidth=1.5))
                ax.text(x1 - 0.5, y1 - 1.5, f"{c - 1}: {score:.2f}", color="white", fontsize=7,
                        bbox={"facecolor": COLORS[key], "alpha": 0.8, "pad": 1, "linewidth": 0})
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(f"{_label(results, key)}\nlr {run['base_lr']:g}, seed "
                              f"{run['seeds'][0]['seed']}", fontsize=9)
    fig.suptitle(f"Test scenes: detections with score ≥ {DRAW_SCORE}, the best class per place "
                 "(label: digit, score); ground truth dashed green, its digit below", fontsize=10)
    return _save(fig, path)


def _ap(results: Dict, path: str) -> str:
    fig, (sweep_ax, class_ax, pr_ax) = plt.subplots(1, 3, figsize=(16, 4.4))
    for key, points in results["sweep"]["points"].items():
        rates = [p["base_lr"] for p in points]
        sweep_ax.plot(rates, [p["AP"] for p in points], "o-", color=COLORS[key],
                      label=f"{_label(results, key)} AP")
        sweep_ax.plot(rates, [p["AP50"] for p in points], "s--", color=COLORS[key], alpha=0.6,
                      label=f"{_label(results, key)} AP50")
        best = results["sweep"]["picked"][key]
        sweep_ax.axvline(best, color=COLORS[key], linewidth=0.8, linestyle=":")
    sweep_ax.set_xscale("log")
    sweep_ax.set_xlabel("base_lr")
    sweep_ax.set_ylabel("COCO AP on the validation split")
    sweep_ax.set_title(f"{results['solver']} base_lr sweep (seed {results['sweep']['seed']}); "
                       "dotted: picked", fontsize=10)
    sweep_ax.legend(fontsize=7)

    runs = results["runs"]
    width = 0.8 / len(runs)
    for i, (key, run) in enumerate(runs.items()):
        ap = run["ap_per_class"]
        class_ax.bar(np.arange(len(ap)) + (i - (len(runs) - 1) / 2) * width, ap, width,
                     color=COLORS[key],
                     label=f"{_label(results, key)} (AP {run['AP']['mean']:.3f})")
        recall = np.array(run["pr50"]["recall"])
        precision = np.array(run["pr50"]["precision"]).mean(axis=0)
        pr_ax.plot(recall, precision, color=COLORS[key],
                   label=f"{_label(results, key)} (AP50 {run['AP50']['mean']:.3f})")
    seeds = len(next(iter(runs.values()))["seeds"])
    class_ax.set_xticks(range(len(ap)))
    class_ax.set_xlabel("digit")
    class_ax.set_ylabel("AP (IoU 0.50:0.95)")
    class_ax.set_ylim(0, 1)
    class_ax.set_title(f"Per-class AP on the test split, mean of {seeds} seeds", fontsize=10)
    class_ax.legend(fontsize=7)
    pr_ax.set_xlabel("recall")
    pr_ax.set_ylabel("precision (mean over classes)")
    pr_ax.set_xlim(0, 1)
    pr_ax.set_ylim(0, 1.02)
    pr_ax.set_title("Precision-recall at IoU 0.5, test split (COCO's interpolation)", fontsize=10)
    pr_ax.legend(fontsize=7)
    fig.suptitle("RetinaNet-lite on digit scenes: COCO AP from pycocotools")
    return _save(fig, path)


def _loss_curves(results: Dict, path: str) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, run in results["runs"].items():
        for n, seed in enumerate(run["seeds"]):
            train, test = seed["curves"]["train"], seed["curves"]["test"]
            ax.plot(*zip(*train), color=COLORS[key], alpha=0.9 if n == 0 else 0.5,
                    label=f"{_label(results, key)} train" if n == 0 else None)
            if test:
                ax.plot(*zip(*test), color=COLORS[key], linestyle="--", marker="o", markersize=3,
                        alpha=0.9 if n == 0 else 0.5,
                        label=f"{_label(results, key)} validation" if n == 0 else None)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("class + box loss (each run its own loss)")
    ax.set_title(f"Detector ({results['solver']}): every seed at its loss's picked rate",
                 fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _loss_share(results: Dict, path: str) -> str:
    # A loss none of whose rates trained (every one diverged) has no net to analyse.
    runs = {key: run for key, run in results["runs"].items() if run["loss_share"]}
    fig, axes = plt.subplots(len(runs), 2, figsize=(10, 3.3 * len(runs)), squeeze=False)
    for row, (key, run) in zip(axes, runs.items()):
        plot_loss_share(row, run["loss_share"], lambda kind, count, key=key:
                        f"{_label(results, key)} net: {kind} ({count:,} class logits)")
    images = next(iter(runs.values()))["loss_share"]["images"]
    fig.suptitle(f"Figure 4 of the paper on the detector's anchors ({images} test scenes, "
                 "ignored anchors left out)")
    return _save(fig, path)


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
