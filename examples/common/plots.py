"""The PNG figures of `make example`, drawn from the results dictionary (see examples.common.report)."""
import os
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")   # files only: no display on a build machine
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from .losses import LABELS as LOSSES  # noqa: E402  (every run's label, softmax runs included)

COLORS = {"focal": "tab:blue", "focal_alpha": "tab:green", "sigmoid_ce": "tab:red",
          "softmax_focal": "tab:purple", "softmax": "tab:orange"}


def write_figures(results: Dict, out_dir: str) -> List[str]:
    """Write the figures for the examples present in results; return their paths."""
    examples = results["examples"]
    paths = [_loss_curves(examples, os.path.join(out_dir, "loss_curves.png")),
             _ap_bars(examples, os.path.join(out_dir, "ap_per_class.png"))]
    if "digit_grid" in examples:
        paths.append(_loss_share(examples["digit_grid"], os.path.join(out_dir, "loss_share.png")))
    return paths


def _loss_curves(examples: Dict, path: str) -> str:
    fig, axes = plt.subplots(1, len(examples), figsize=(6 * len(examples), 4.2), squeeze=False)
    for ax, example in zip(axes[0], examples.values()):
        for key, run in example["runs"].items():
            train, test = run["curves"]["train"], run["curves"]["test"]
            ax.plot(*zip(*train), color=COLORS[key], label=f"{LOSSES[key]} train")
            ax.plot(*zip(*test), color=COLORS[key], linestyle="--", marker="o", markersize=3,
                    label=f"{LOSSES[key]} test")
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss (each run its own loss)")
        ax.set_title(example["title"], fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle("Loss curves from the Caffe logs (train: mean of the last 20 iterations)")
    return save_figure(fig, path)


def _ap_bars(examples: Dict, path: str) -> str:
    fig, axes = plt.subplots(1, len(examples), figsize=(6 * len(examples), 4.2), squeeze=False)
    for ax, example in zip(axes[0], examples.values()):
        keys = list(example["runs"])
        width = 0.8 / len(keys)
        num_classes = len(example["runs"][keys[0]]["metrics"]["ap_per_class"])
        for i, key in enumerate(keys):
            metrics = example["runs"][key]["metrics"]
            ax.bar([c + (i - (len(keys) - 1) / 2) * width for c in range(num_classes)],
                   metrics["ap_per_class"], width, color=COLORS[key],
                   label=f"{LOSSES[key]} (mAP {metrics['mAP']:.3f})")
        rare = set(example["data"].get("rare_classes", []))
        ax.set_xticks(range(num_classes))
        ax.set_xticklabels([f"{c}*" if c in rare else str(c) for c in range(num_classes)])
        low = min(min(run["metrics"]["ap_per_class"]) for run in example["runs"].values())
        ax.set_ylim(max(0.0, low - 0.05), 1.0)
        ax.set_xlabel("digit class" + ("  (* rare in training)" if rare else ""))
        ax.set_ylabel("average precision (test)")
        ax.set_title(example["title"], fontsize=10)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=len(keys))
    fig.suptitle("Per-class average precision on held-out data")
    return save_figure(fig, path)


def _loss_share(example: Dict, path: str) -> str:
    runs = example["runs"]
    fig, axes = plt.subplots(len(runs), 2, figsize=(9, 3.2 * len(runs)), squeeze=False)
    for row, (key, run) in zip(axes, runs.items()):
        plot_loss_share(row, run["metrics"]["loss_share"],
                        lambda kind, count, key=key: f"net trained with {LOSSES[key]}: {kind} ({count:,})")
    fig.suptitle("Figure 4 of the paper, on the digit_grid test cells: who carries the loss")
    return save_figure(fig, path)


def plot_loss_share(row, analysis: Dict, title, log_negatives: bool = False) -> None:
    """One net's Figure-4 curves (loss_share.loss_share_analysis) on two axes, positives and
    negatives, one curve per γ; title(kind, count) names each panel. log_negatives: the
    negatives' share on a log axis (a linear one is flat at 0 where γ > 0 silences them)."""
    for ax, kind in zip(row, ("positives", "negatives")):
        for gamma in analysis["gammas"]:
            ax.plot(analysis["fractions"], analysis[kind]["curves"][str(gamma)],
                    label=f"γ = {gamma:g}")
        ax.set_title(title(kind, analysis[kind]["count"]), fontsize=9)
        ax.set_xlabel(f"fraction of {kind}, easiest first")
        ax.set_ylabel("cumulative share of the loss")
        ax.set_xlim(0, 1)
        if log_negatives and kind == "negatives":
            ax.set_yscale("log")
            ax.set_ylim(1e-7, 1.5)
        else:
            ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="upper left")


def save_figure(fig, path: str, dpi: int = 110) -> str:
    """Lay out, write and close fig (pyplot keeps every open figure alive); return path."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
