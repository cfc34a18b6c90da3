"""The study's figures, from results["nets"] (examples.study.study) and the sweep's file:

    study_ap.png      per net: test AP of every arm (each seed, mean and 95% t-interval, the
                      axis fitted to the values); validation AP against iteration
    study_sweep.png   per net: final validation AP against base_lr (log axis), divergence marked
"""
import json
import os
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")   # files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..common.plots import save_figure  # noqa: E402

PALETTE = ("tab:blue", "tab:red", "tab:green", "tab:purple")
SWEEP_FILE = "study_sweep.json"


def write_figures(results: Dict, out_dir: str) -> List[str]:
    paths = [_ap(results, os.path.join(out_dir, "study_ap.png"))]
    sweep = os.path.join(out_dir, SWEEP_FILE)
    if os.path.exists(sweep):
        with open(sweep, encoding="utf-8") as f:
            paths.append(sweep_figure(json.load(f), os.path.join(out_dir, "study_sweep.png")))
    return paths


def fitted_limits(values, margin: float = 0.15):
    """(low, high) around the values with a margin of their range (at least 0.02 AP)."""
    low, high = float(np.min(values)), float(np.max(values))
    pad = max((high - low) * margin, 0.02)
    return max(0.0, low - pad), min(1.0, high + pad)


def _ap(results: Dict, path: str) -> str:
    nets = results["nets"]
    fig, axes = plt.subplots(len(nets), 2, figsize=(14, 4.6 * len(nets)), squeeze=False)
    for (test_ax, val_ax), net in zip(axes, nets.values()):
        arms = net["arms"]
        shown = []
        for i, (arm, color) in enumerate(zip(arms.values(), PALETTE)):
            values = [s["AP"] for s in arm["seeds"]]
            shown += values
            test_ax.plot(np.full(len(values), i), values, "o", color=color, alpha=0.5)
            ap = arm["AP"]
            if ap["low"] is not None:
                test_ax.errorbar(i + 0.15, ap["mean"], yerr=[[ap["mean"] - ap["low"]],
                                                              [ap["high"] - ap["mean"]]],
                                 fmt="s", color=color, capsize=4)
                shown += [ap["low"], ap["high"]]
            for seed in arm["seeds"]:
                val_ax.plot(*zip(*seed["val_curve"]), color=color, alpha=0.25, linewidth=0.8)
            iterations = [it for it, _ in arm["seeds"][0]["val_curve"]]
            mean = np.mean([[v for _, v in s["val_curve"]] for s in arm["seeds"]], axis=0)
            val_ax.plot(iterations, mean, "o-", color=color,
                        label=f"{arm['label']}, lr {arm['base_lr']:g}")
        test_ax.set_xticks(range(len(arms)))
        test_ax.set_xticklabels([a["label"].replace(" (", "\n(", 1) for a in arms.values()],
                                fontsize=8)
        test_ax.set_ylim(*fitted_limits(shown))
        test_ax.set_ylabel("COCO AP, test split")
        test_ax.set_title(f"{net['title']}: test AP (circles: seeds; squares: mean, 95% "
                          "t-interval)", fontsize=10)
        val_ax.set_xlabel("iteration")
        val_ax.set_ylabel("COCO AP, validation split")
        val_ax.set_title("Validation AP during training (thin: each seed; thick: mean)",
                         fontsize=10)
        val_ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"The detector study: {results['protocol']['text']}, "
                 f"{len(results['seeds'])} seeds per arm", fontsize=11)
    return save_figure(fig, path, dpi=100)


def sweep_figure(sweep: Dict, path: str) -> str:
    nets = sweep["nets"]
    fig, axes = plt.subplots(1, len(nets), figsize=(7 * len(nets), 4.4), squeeze=False)
    for ax, (name, arms) in zip(axes[0], nets.items()):
        for arm, color in zip(arms.values(), PALETTE):
            points = arm["points"]
            rates = [p["base_lr"] for p in points]
            ax.plot(rates, [p["AP"] for p in points], "o-", color=color,
                    label=f"{arm['label']}: picked {arm['picked']:g}")
            ax.plot([arm["picked"]], [next(p["AP"] for p in points
                                           if p["base_lr"] == arm["picked"])],
                    "o", markersize=12, markerfacecolor="none", color=color)
            for p in points + arm["probes"]:
                if p["diverged"]:
                    ax.plot([p["base_lr"]], [0], "x", color=color, markersize=10)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("base_lr (x: diverged)")
        ax.set_ylabel(f"final COCO AP, validation split (seed {sweep['seed']})")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"Rate sweeps: {sweep['protocol']['text']}", fontsize=11)
    return save_figure(fig, path, dpi=100)

