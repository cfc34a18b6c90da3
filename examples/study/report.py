"""The study's printed tables (Markdown, as docs/examples.md shows them), from results/
study_sweep.json (sweep_tables) and results/study.json (study_tables)."""
from typing import Dict, List, Optional

from .scoring import METRICS, failed
from .sweep import stable_pick


def sweep_tables(sweep: Dict) -> str:
    protocol = sweep["protocol"]
    lines = [f"| rate sweep, seed {sweep['seed']}: final validation AP ({protocol['text']}) | "
             "base_lr: AP | picked | stricter pick (its double trained) | lowest rate that "
             "failed | lowest rate that diverged |", "|---|---|---|---|---|---|"]
    for name, arms in sweep["nets"].items():
        for arm in arms.values():
            cells = ", ".join(f"{p['base_lr']:g}: " + ("diverged" if p["diverged"] else
                                                       f"{p['AP']:.3f}") for p in arm["points"])
            probes = [p for p in arm["probes"]]
            boundary = (f"{arm['boundary']:g}" if arm["boundary"] is not None
                        else f"none up to {arm['highest_tried']:g}")
            if probes:
                boundary += (" (first " + str(sweep["check_stop"]) + " iterations at "
                             + ", ".join(f"{p['base_lr']:g}" + (" diverged" if p["diverged"]
                                                                else " finite")
                                         for p in probes) + ")")
            lines.append(f"| {name}: {arm['label']} | {cells} | {arm['picked']:g}"
                         f"{'' if arm['interior'] else ' (edge)'} | "
                         f"{_rate(stable_pick(arm['points']))} | "
                         f"{_rate(failure_boundary(arm))} | {boundary} |")
    return "\n".join(lines)


def failure_boundary(arm: Dict) -> Optional[float]:
    """A swept arm's lowest rate that failed: diverged, or trained to nothing at the full
    budget (the probes, cut short, are judged by divergence alone)."""
    rates = ([p["base_lr"] for p in arm["points"] if failed(p)]
             + [p["base_lr"] for p in arm["probes"] if p["diverged"]])
    return min(rates) if rates else None


def _rate(rate: Optional[float]) -> str:
    return "none" if rate is None else f"{rate:g}"


def study_tables(results: Dict) -> str:
    """Each net's arms and comparisons at the swept rates, then at the stricter rates of the
    sensitivity analysis."""
    tables = [_net_table(net) for net in results["nets"].values()]
    stable = results.get("stable", {}).get("nets", {})
    tables += [_net_table(net, "at the stricter rates") for net in stable.values()]
    return "\n\n".join(tables)


def _net_table(net: Dict, rates: str = "") -> str:
    seeds = len(next(iter(net["arms"].values()))["seeds"])
    lines: List[str] = [
        f"| {net['title']}{' ' + rates if rates else ''}: test COCO AP over {seeds} seeds, mean "
        "[95% CI] | base_lr | AP | AP50 | AP75 | AP per seed | failed (diverged) |",
        "|---|---|---|---|---|---|---|"]
    for arm in net["arms"].values():
        cells = " | ".join(interval(arm[m]) for m in METRICS)
        per_seed = ", ".join(f"{s['AP']:.3f}" for s in arm["seeds"])
        lines.append(f"| {arm['label']} | {arm['base_lr']:g} | {cells} | {per_seed} | "
                     f"{arm['failed']}/{seeds} ({arm['diverged']}) |")
    if net.get("comparisons"):
        lines += ["", "| comparison (a − b) | AP per-seed [95% CI] | AP bootstrap over images "
                  "[95%] | AP50 per-seed | AP75 per-seed |", "|---|---|---|---|---|"]
        for comparison in net["comparisons"].values():
            paired, boot = comparison["paired"], comparison["bootstrap"]
            lines.append(f"| {comparison['name']} | {interval(paired['AP'], True)} | "
                         f"{interval(boot['AP'], True)} | {interval(paired['AP50'], True)} | "
                         f"{interval(paired['AP75'], True)} |")
    return "\n".join(lines)


def interval(stats: Dict, signed: bool = False) -> str:
    form = "{:+.3f}" if signed else "{:.3f}"
    if stats.get("low") is None:
        return form.format(stats["mean"])
    return (form.format(stats["mean"]) + " [" + form.format(stats["low"]) + ", "
            + form.format(stats["high"]) + "]")


def demo_table(net: Dict) -> str:
    """make example's table of one net: every arm once (a demonstration, not a comparison)."""
    lines = [f"| {net['title']} ({net['protocol']['text']}; seed {net['seed']}, "
             "a demonstration) | base_lr | test AP | AP50 | AP75 | validation AP by snapshot |",
             "|---|---|---|---|---|---|"]
    for arm in net["arms"].values():
        seed = arm["seeds"][0]
        curve = ", ".join(f"{ap:.3f}" for _, ap in seed["val_curve"])
        cells = ("diverged | | |" if seed["diverged"] else
                 f"{seed['AP']:.3f} | {seed['AP50']:.3f} | {seed['AP75']:.3f} |")
        lines.append(f"| {arm['label']} | {arm['base_lr']:g} | {cells} {curve} |")
    return "\n".join(lines)
