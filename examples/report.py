"""The end of `make example`: the printed table and results.json.

results = {"command", "quick", "wall_time_seconds", "examples": {name: {"title", "data",
          "runs": {loss key: {"label", "train_seconds", "curves": {"train", "test"},
          "metrics": {...}}}}}}
"""
import json
import math
from typing import Dict, List

from .losses import LOSSES, PAPER_SETTING

# Fractions whose loss share the table quotes: some of loss_share.EASIEST_FRACTIONS.
TABLE_FRACTIONS = (0.9, 0.99)


def write_results(results: Dict, path: str) -> str:
    with open(path, "w") as f:
        json.dump(_rounded(results), f, indent=1, ensure_ascii=False)
        f.write("\n")
    return path


def table(results: Dict) -> str:
    """The short summary printed at the end (Markdown, so the README can show it as is)."""
    lines: List[str] = []
    examples = results["examples"]
    if "digits" in examples:
        lines += ["| digits (long-tailed) | mAP | AP rare classes | AP common classes | final test loss |",
                  "|---|---|---|---|---|"]
        for key, run in examples["digits"]["runs"].items():
            m = run["metrics"]
            lines.append(f"| {LOSSES[key]} | {m['mAP']:.3f} | {m['rare_AP']:.3f} | "
                         f"{m['common_AP']:.3f} | {run['curves']['test'][-1][1]:.4g} |")
    if "digit_grid" in examples:
        grid = examples["digit_grid"]
        header = " | ".join(f"easiest {f:.0%} of negatives carry, γ=0 / γ=2" for f in TABLE_FRACTIONS)
        lines += ["", f"| digit_grid (dense) | mAP over cells | {header} | final test loss |",
                  "|---|---|" + "---|" * len(TABLE_FRACTIONS) + "---|"]
        for key, run in grid["runs"].items():
            m = run["metrics"]
            easiest = m["loss_share"]["negatives"]["easiest"]
            shares = " | ".join(f"{easiest['0.0'][str(f)]:.1%} / {easiest['2.0'][str(f)]:.1%}"
                                for f in TABLE_FRACTIONS)
            lines.append(f"| {LOSSES[key]} | {m['mAP']:.3f} | {shares} | "
                         f"{run['curves']['test'][-1][1]:.4g} |")
        lines.append(f"\nloss shares: computed with focal_loss_layer.core on each trained net's "
                     f"test-cell logits (the paper's Figure 4 uses the {LOSSES[PAPER_SETTING]} net)")
    return "\n".join(lines)


def _rounded(value):
    """Floats to 6 significant digits, NaN to null: a small, valid JSON file."""
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value

