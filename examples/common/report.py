"""The end of `make example`: the printed table and results.json.

results = {"command", "quick", "code", "wall_time_seconds", "examples": {name: {"title", "data",
          "runs": {loss key: {"label", "train_seconds", "curves": {"train", "test"},
          "metrics": {...}}}}}}
"""
import json
import math
import re
import subprocess
from typing import Dict, List

from .losses import LABELS, PAPER_SETTING, SOFTMAX_LOSSES
from .training import REPO

# Fractions whose loss share the table quotes: some of loss_share.EASIEST_FRACTIONS.
TABLE_FRACTIONS = (0.9, 0.99)
_FLAT_LIST = re.compile(r'\[([^\[\]{}"]*)\]')
_LIST_OF_FLAT_LISTS = re.compile(r"\[((?:\s*\[[^\[\]]*\],?)+)\s*\]")


def write_results(results: Dict, path: str) -> str:
    text = json.dumps(_rounded(results), indent=1, ensure_ascii=False)
    # One line per list of numbers (per-class APs, curves) rather than one line per number.
    for pattern in (_FLAT_LIST, _LIST_OF_FLAT_LISTS):
        text = pattern.sub(lambda m: "[" + re.sub(r"\s+", " ", m.group(1)).strip() + "]", text)
    with open(path, "w") as f:
        f.write(text + "\n")
    return path


def code_version() -> dict:
    """The commit the results came from, and whether the tree had changes (tracked files), so
    that a committed results file says whether a clean tree made it."""
    def git(*words):
        done = subprocess.run(["git", *words], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "clean": status == "" if status is not None
            else None}


def table(results: Dict) -> str:
    """The short summary printed at the end (Markdown, so the README can show it as is)."""
    lines: List[str] = []
    examples = results["examples"]
    if "digits" in examples:
        lines += ["| digits (long-tailed) | mAP | AP rare classes | AP common classes | training |",
                  "|---|---|---|---|---|"]
        for key, run in examples["digits"]["runs"].items():
            m = run["metrics"]
            lines.append(f"| {LABELS[key]} | {m['mAP']:.3f} | {m['rare_AP']:.3f} | "
                         f"{m['common_AP']:.3f} | {run['train_seconds']:.0f} s |")
    if "digit_grid" in examples:
        grid = examples["digit_grid"]
        header = " | ".join(f"loss share of the easiest {f:.0%} of negatives, γ=0 / γ=2"
                            for f in TABLE_FRACTIONS)
        lines += ["", f"| digit_grid (dense) | mAP over cells | {header} | training |",
                  "|---|---|" + "---|" * len(TABLE_FRACTIONS) + "---|"]
        for key, run in grid["runs"].items():
            m = run["metrics"]
            easiest = m["loss_share"]["negatives"]["easiest"]
            shares = " | ".join(f"{_percent(easiest['0.0'][str(f)])} / {_percent(easiest['2.0'][str(f)])}"
                                for f in TABLE_FRACTIONS)
            lines.append(f"| {LABELS[key]} | {m['mAP']:.3f} | {shares} | {run['train_seconds']:.0f} s |")
        lines.append(f"\nloss shares: computed with focal_loss_layer.core on each trained net's "
                     f"test-cell logits (the paper's Figure 4 uses the {LABELS[PAPER_SETTING]} net)")
        if SOFTMAX_LOSSES.keys() & grid["runs"].keys():
            lines.append("softmax rows: 11 classes per cell; AP from log p(digit); the negatives "
                         "are the background cells, each with its softmax focal loss")
    return "\n".join(lines)


def _percent(share: float) -> str:
    """83.6%, 0.080%, <0.001%: small shares keep a digit that shows they are not zero."""
    if share < 1e-5:
        return "<0.001%"
    return f"{100 * share:.1f}%" if share >= 1e-3 else f"{100 * share:.3f}%"


def _rounded(value):
    """Floats to 6 significant digits, NaN to null: a small, valid JSON file."""
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value

