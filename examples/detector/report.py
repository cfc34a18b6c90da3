"""The detector's printed table (Markdown, as the README shows it), from results["detector"]."""
from typing import Dict, List

# Lin et al. 2017, Table 1 (RetinaNet, ResNet-50-FPN, 600 px, COCO minival): (a) α for CE at
# γ = 0, the best being α = 0.75; (b) γ with its best α, the paper's pick being γ = 2, α = 0.25.
PAPER_TABLE_1 = {
    "ce": {"row": "Table 1a, CE α=0.75", "AP": 31.1, "AP50": 49.4, "AP75": 33.0},
    "focal": {"row": "Table 1b, FL γ=2, α=0.25", "AP": 34.0, "AP50": 52.5, "AP75": 36.5},
}
METRICS = ("AP", "AP50", "AP75")


def table(results: Dict) -> str:
    runs = results["runs"]
    seeds = len(next(iter(runs.values()))["seeds"])
    lines: List[str] = [
        f"| detector ({results['solver']}, {results['schedule']['max_iter']} iterations): COCO AP "
        f"on the test split, mean ± sd over {seeds} seeds (min–max) | "
        "base_lr (picked on val) | AP | AP50 | AP75 | training per run |",
        "|---|---|---|---|---|---|"]
    for key, run in runs.items():
        cells = " | ".join(_spread(run[m]) for m in METRICS)
        seconds = sum(s["train_seconds"] for s in run["seeds"]) / len(run["seeds"])
        lines.append(f"| {results['losses'][key]['label']} | {run['base_lr']:g} | {cells} | "
                     f"{seconds:.0f} s |")
    for key in runs:
        paper = PAPER_TABLE_1[key]
        cells = " | ".join(f"{paper[m]:.1f}" for m in METRICS)
        lines.append(f"| Lin et al. 2017, {paper['row']} (RetinaNet-50, COCO; AP in %) | — | "
                     f"{cells} | — |")
    sweep = results["sweep"]
    lines.append("")
    lines.append(f"validation sweep ({results['solver']}, seed {sweep['seed']}, COCO AP on the val "
                 "split): " + "; ".join(
        f"{results['losses'][key]['label']}: " + ", ".join(
            f"lr {p['base_lr']:g} → " + ("diverged" if p["diverged"] else f"{p['AP']:.3f}")
            for p in points)
        for key, points in sweep["points"].items()))
    shares = []
    for key, run in runs.items():
        if not run["loss_share"]:   # every rate diverged
            continue
        easiest = run["loss_share"]["negatives"]["easiest"]
        shares.append(f"{results['losses'][key]['label']} net: {_percent(easiest['0.0']['0.9'])} "
                      f"of CE (γ=0) / {_percent(easiest['2.0']['0.9'])} of FL (γ=2)")
    lines.append("loss share of the easiest 90% of negative test anchors' class logits: "
                 + "; ".join(shares))
    return "\n".join(lines)


def _spread(stats: Dict) -> str:
    return f"{stats['mean']:.3f} ± {stats['std']:.3f} ({stats['min']:.3f}–{stats['max']:.3f})"


def _percent(share: float) -> str:
    if share < 1e-5:
        return "<0.001%"
    return f"{100 * share:.1f}%" if share >= 1e-3 else f"{100 * share:.3f}%"
