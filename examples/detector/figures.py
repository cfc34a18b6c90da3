"""The detector's PNG figures, drawn from results["detector"] (examples.detector.experiment) and,
for the pictures, the test images in out_dir/data/detector/.

    detector_detections.png   test images with the prior-bias FL and CE nets' detections
    detector_ap.png           test AP per arm (every seed, mean, 95% CI); validation AP against
                              iteration; per-class AP with its spread over seeds
    detector_loss_curves.png  train and validation loss, one panel per objective (FL, CE)
    detector_loss_share.png   the paper's Figure 4 on the detector's test anchors (log axis)
"""
import os
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")   # files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..common.plots import plot_loss_share  # noqa: E402
from .data import read_split  # noqa: E402
from .experiment import DRAW_SCORE, NAME  # noqa: E402
from .nms import nms  # noqa: E402

COLORS = {"focal": "tab:blue", "ce": "tab:red", "focal_noprior": "tab:cyan",
          "ce_noprior": "tab:orange"}
SHOWN = ("focal", "ce")   # the arms whose detections and loss shares are drawn
DISPLAY_IOU = 0.5


def write_figures(results: Dict, out_dir: str) -> List[str]:
    return [_detections(results, out_dir, os.path.join(out_dir, "detector_detections.png")),
            _ap(results, os.path.join(out_dir, "detector_ap.png")),
            _loss_curves(results, os.path.join(out_dir, "detector_loss_curves.png")),
            _loss_share(results, os.path.join(out_dir, "detector_loss_share.png"))]


def _label(results: Dict, key: str) -> str:
    return results["arms"][key]["label"]


def _detections(results: Dict, out_dir: str, path: str) -> str:
    images, boxes, classes = read_split(os.path.join(out_dir, "data", NAME), "test")
    runs = {key: results["arms"][key] for key in SHOWN}
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
    arms = results["arms"]
    fig, (test_ax, val_ax, class_ax) = plt.subplots(1, 3, figsize=(17, 4.8))
    for i, (key, arm) in enumerate(arms.items()):
        values = [s["AP"] for s in arm["seeds"]]
        test_ax.plot(np.full(len(values), i), values, "o", color=COLORS[key], alpha=0.5)
        ap = arm["AP"]
        if ap["low"] is not None:
            test_ax.errorbar(i + 0.15, ap["mean"], yerr=[[ap["mean"] - ap["low"]],
                                                          [ap["high"] - ap["mean"]]],
                             fmt="s", color=COLORS[key], capsize=4)
        for seed in arm["seeds"]:
            val_ax.plot(*zip(*seed["val_curve"]), color=COLORS[key], alpha=0.25, linewidth=0.8)
        iterations = [it for it, _ in arm["seeds"][0]["val_curve"]]
        mean_curve = np.mean([[ap for _, ap in s["val_curve"]] for s in arm["seeds"]], axis=0)
        val_ax.plot(iterations, mean_curve, "o-", color=COLORS[key],
                    label=f"{arm['label']} (mean of {len(arm['seeds'])} seeds)")
    test_ax.set_xticks(range(len(arms)))
    test_ax.set_xticklabels([arm["label"].replace(", ", ",\n", 1) for arm in arms.values()],
                            fontsize=8)
    test_ax.set_ylim(0, 1)
    test_ax.set_ylabel("COCO AP, test split")
    test_ax.set_title("Test AP: circles = seeds, squares = mean with 95% t-interval", fontsize=10)
    val_ax.set_ylim(0, 1)
    val_ax.set_xlabel("iteration")
    val_ax.set_ylabel("COCO AP, validation split")
    val_ax.set_title("Validation AP during training (thin: each seed)", fontsize=10)
    val_ax.legend(fontsize=7, loc="upper left")

    width = 0.8 / len(SHOWN)
    for i, key in enumerate(SHOWN):
        per_seed = np.array(arms[key]["ap_per_class"], dtype=float)   # (seeds, C)
        mean = np.nanmean(per_seed, axis=0)
        low, high = np.nanmin(per_seed, axis=0), np.nanmax(per_seed, axis=0)
        x = np.arange(len(mean)) + (i - (len(SHOWN) - 1) / 2) * width
        class_ax.bar(x, mean, width, color=COLORS[key], alpha=0.8,
                     yerr=[mean - low, high - mean], capsize=2, error_kw={"linewidth": 0.8},
                     label=f"{arms[key]['label']}")
    class_ax.set_xticks(range(len(mean)))
    class_ax.set_xlabel("digit")
    class_ax.set_ylabel("AP (IoU 0.50:0.95), test split")
    class_ax.set_ylim(0, 1)
    class_ax.set_title(f"Per-class AP: mean of {len(arms['focal']['seeds'])} seeds, bars "
                       "min-max over seeds", fontsize=10)
    class_ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("RetinaNet-lite on textured digit scenes: COCO AP from pycocotools")
    return _save(fig, path)


def _loss_curves(results: Dict, path: str) -> str:
    # One panel per objective: FL's and CE's losses are different functions, never one axis.
    panels = {"focal": ("focal", "focal_noprior"), "ce": ("ce", "ce_noprior")}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, (loss, keys) in zip(axes, panels.items()):
        for key in keys:
            arm = results["arms"][key]
            for n, seed in enumerate(arm["seeds"]):
                train, test = seed["curves"]["train"], seed["curves"]["test"]
                if train:
                    ax.plot(*zip(*train), color=COLORS[key], alpha=0.6, linewidth=0.8,
                            label=f"{arm['label']} train" if n == 0 else None)
                if test:
                    ax.plot(*zip(*test), color=COLORS[key], linestyle="--", marker="o",
                            markersize=3, alpha=0.6,
                            label=f"{arm['label']} validation" if n == 0 else None)
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("class + box loss")
        ax.set_title(f"{results['arms'][loss]['label']}: every seed", fontsize=10)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"Detector ({results['solver']}): training and validation loss")
    return _save(fig, path)


def _loss_share(results: Dict, path: str) -> str:
    runs = {key: results["arms"][key] for key in SHOWN if results["arms"][key].get("loss_share")}
    fig, axes = plt.subplots(len(runs), 2, figsize=(10, 3.3 * len(runs)), squeeze=False)
    for row, (key, run) in zip(axes, runs.items()):
        plot_loss_share(row, run["loss_share"], lambda kind, count, key=key:
                        f"{_label(results, key)} net: {kind} ({count:,} class logits)",
                        log_negatives=True)
    images = next(iter(runs.values()))["loss_share"]["images"]
    fig.suptitle(f"Figure 4 of the paper on the detector's anchors ({images} test scenes, "
                 "ignored anchors left out; negatives on a log axis)")
    return _save(fig, path)


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
