"""The detector's printed tables (Markdown, as the README shows them), from results["detector"]
and the sweeps' results."""
from typing import Dict, List

# Lin et al. 2017, Table 1 (RetinaNet, ResNet-50-FPN, 600 px, COCO minival): (a) α for CE at
# γ = 0, the best being α = 0.75; (b) γ with its best α, the paper's pick being γ = 2, α = 0.25.
PAPER_TABLE_1 = {
    "ce": {"row": "Table 1a, CE α=0.75", "AP": 31.1, "AP50": 49.4, "AP75": 33.0},
    "focal": {"row": "Table 1b, FL γ=2, α=0.25", "AP": 34.0, "AP50": 52.5, "AP75": 36.5},
}
METRICS = ("AP", "AP50", "AP75")


def table(results: Dict) -> str:
    arms = results["arms"]
    seeds = len(next(iter(arms.values()))["seeds"])
    lines: List[str] = [
        f"| detector ({results['solver']}, {results['schedule']['max_iter']} iterations): COCO "
        f"AP on the test split over {seeds} seeds, mean [95% CI] | base_lr | AP | AP50 | AP75 | "
        "AP per seed | diverged | training per run |",
        "|---|---|---|---|---|---|---|---|"]
    for arm in arms.values():
        cells = " | ".join(interval(arm[m]) for m in METRICS)
        per_seed = ", ".join(f"{s['AP']:.3f}" for s in arm["seeds"])
        seconds = sum(s["train_seconds"] for s in arm["seeds"]) / len(arm["seeds"])
        lines.append(f"| {arm['label']} | {arm['base_lr']:g} | {cells} | {per_seed} | "
                     f"{arm['diverged']}/{len(arm['seeds'])} | {seconds:.0f} s |")
    lines += ["", "| paired per-seed difference, mean [95% CI] | AP | AP50 | AP75 | per seed (AP) |",
              "|---|---|---|---|---|"]
    for name, pair in results["paired"].items():
        cells = " | ".join(interval(pair[m], signed=True) for m in METRICS)
        per_seed = ", ".join(f"{d:+.3f}" for d in pair["AP"]["values"])
        lines.append(f"| {name} | {cells} | {per_seed} |")
    lines += ["", "| Lin et al. 2017 (RetinaNet-50, COCO; AP in %) | AP | AP50 | AP75 |",
              "|---|---|---|---|"]
    for paper in PAPER_TABLE_1.values():
        lines.append(f"| {paper['row']} | " + " | ".join(f"{paper[m]:.1f}" for m in METRICS)
                     + " |")
    shares = []
    for key in ("focal", "ce"):
        share = arms[key].get("loss_share")
        if share:
            easiest = share["negatives"]["easiest"]
            shares.append(f"{arms[key]['label']} net: {_percent(easiest['0.0']['0.9'])} of CE "
                          f"(γ=0) / {_percent(easiest['2.0']['0.9'])} of FL (γ=2)")
    if shares:
        lines += ["", "loss share of the easiest 90% of negative test anchors' class logits: "
                  + "; ".join(shares)]
    return "\n".join(lines)


def lr_sweep_table(sweep: Dict) -> str:
    lines = [f"| learning-rate sweep ({sweep['solver']}, {sweep['schedule']['max_iter']} "
             f"iterations, seeds {', '.join(map(str, sweep['seeds']))}): validation AP | base_lr | "
             "AP per seed | mean AP |", "|---|---|---|---|"]
    for key, points in sweep["points"].items():
        for rate, mean in sweep["mean_AP"][key].items():
            per_seed = ", ".join("diverged" if p["diverged"] else f"{p['AP']:.3f}"
                                 for p in points if f"{p['base_lr']:g}" == rate)
            picked = " (picked)" if float(rate) == sweep["picked"][key] else ""
            lines.append(f"| {sweep['losses'][key]['label']} | {rate}{picked} | {per_seed} | "
                         f"{mean:.3f} |")
    return "\n".join(lines)


def gamma_table(sweep: Dict) -> str:
    lines = [f"| γ sweep ({sweep['solver']}, {sweep['schedule']['max_iter']} iterations, prior "
             f"bias, seeds {', '.join(map(str, sweep['seeds']))}): test AP | base_lr | AP per seed "
             "| AP mean [95% CI] | AP50 mean |", "|---|---|---|---|---|"]
    for point in sweep["points"].values():
        per_seed = ", ".join(f"{s['AP']:.3f}" for s in point["seeds"])
        lines.append(f"| γ={point['gamma']:g}, α={point['alpha']:g} | {point['base_lr']:g} | "
                     f"{per_seed} | {interval(point['AP'])} | {point['AP50']['mean']:.3f} |")
    return "\n".join(lines)


def interval(stats: Dict, signed: bool = False) -> str:
    form = "{:+.3f}" if signed else "{:.3f}"
    if stats["low"] is None:
        return form.format(stats["mean"])
    return (form.format(stats["mean"]) + " [" + form.format(stats["low"]) + ", "
            + form.format(stats["high"]) + "]")


def _percent(share: float) -> str:
    if share < 1e-5:
        return "<0.001%"
    return f"{100 * share:.1f}%" if share >= 1e-3 else f"{100 * share:.3f}%"
