"""make example's RetinaNet-lite pictures, drawn from results["detector"] (examples.study.study.
demo, with each shown arm's loss share) and the test images in out_dir/data/detector/:

    detector_detections.png   test images with the FL and CE nets' detections
    detector_loss_share.png   the paper's Figure 4 on the detector's test anchors (log axis)

The study's own figures (study_ap.png, study_sweep.png) are examples.study.figures'.
"""
import os
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")   # files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..common.plots import plot_loss_share, save_figure  # noqa: E402
from .data import read_split  # noqa: E402
from .experiment import DRAW_SCORE, NAME  # noqa: E402
from .nms import nms  # noqa: E402

COLORS = {"focal": "tab:blue", "ce": "tab:red", "ohem": "tab:green", "focal_g1": "tab:purple"}
SHOWN = ("focal", "ce")   # the arms whose detections and loss shares are drawn
DISPLAY_IOU = 0.5


def write_figures(results: Dict, out_dir: str) -> List[str]:
    return [_detections(results, out_dir, os.path.join(out_dir, "detector_detections.png")),
            _loss_share(results, os.path.join(out_dir, "detector_loss_share.png"))]


def _label(results: Dict, key: str) -> str:
    return results["arms"][key]["label"]


def _detections(results: Dict, out_dir: str, path: str) -> str:
    images, boxes, classes = read_split(os.path.join(out_dir, "data", NAME), "test")
    # A diverged arm has no detections to draw: its row is left out.
    runs = {key: results["arms"][key] for key in SHOWN if results["arms"][key].get("detections")}
    if not runs:
        return _empty(path, "No detections to draw: every shown arm diverged")
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
                              f"{results['seed']}", fontsize=9)
    fig.suptitle(f"Test scenes: detections with score ≥ {DRAW_SCORE}, the best class per place "
                 "(label: digit, score); ground truth dashed green, its digit below", fontsize=10)
    return save_figure(fig, path)


def _loss_share(results: Dict, path: str) -> str:
    runs = {key: results["arms"][key] for key in SHOWN if results["arms"][key].get("loss_share")}
    if not runs:
        return _empty(path, "No loss shares to draw: every shown arm diverged")
    fig, axes = plt.subplots(len(runs), 2, figsize=(10, 3.3 * len(runs)), squeeze=False)
    for row, (key, run) in zip(axes, runs.items()):
        plot_loss_share(row, run["loss_share"], lambda kind, count, key=key:
                        f"{_label(results, key)} net: {kind} ({count:,} class logits)",
                        log_negatives=True)
    images = next(iter(runs.values()))["loss_share"]["images"]
    fig.suptitle(f"Figure 4 of the paper on the detector's anchors ({images} test scenes, "
                 "ignored anchors left out; negatives on a log axis)")
    return save_figure(fig, path)


def _empty(path: str, text: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return save_figure(fig, path)

