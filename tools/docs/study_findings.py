"""The detector study's findings in words (README.md region `study-headline`, docs/examples.md
region `study-findings`).

Every number, and every word that depends on one ("ahead", "not told apart", "diverged",
"flattened"), is computed here from results/study.json (written by `make study`) and
results/study_sweep.json (by `make sweep`), so a new run rewrites the sentences together with the
tables they describe.
"""
from typing import Dict, Optional

from examples.study.report import failure_boundary, interval
from examples.study.scoring import FAILED_AP, failed

# The paper's numbers the findings set ours against (Lin et al. 2017, COCO minival): Table 1a/1b,
# RetinaNet-50-FPN at 600 px, FL γ=2 α=0.25 34.0 AP against α-balanced CE (α=0.75) 31.1; Table
# 1d, ResNet-101-FPN: FL 3.2 AP above the best OHEM setting.
PAPER = {"FL − CE": "+2.9 AP (Table 1a/1b)", "FL − OHEM": "+3.2 AP over its best OHEM "
         "(Table 1d)", "FL γ=1 − FL γ=2": "γ = 2 its pick (Table 1b)"}
# COCO's imbalance, for scale: RetinaNet scores ~100k anchors per image (the paper, Section 1),
# 80 classes; COCO has 7.7 object instances per image (Lin et al. 2014, Microsoft COCO).
COCO_ANCHORS, COCO_CLASSES, COCO_OBJECTS = 100_000, 80, 7.7
ASSUMED_ANCHORS_PER_OBJECT = (10, 20)


def verdict(stats: Dict, a: str, b: str) -> str:
    """"a ahead", "b ahead" or "not told apart", by whether the interval excludes 0."""
    if stats["low"] is None:
        return "one seed: no interval"
    if stats["low"] > 0:
        return f"{a} ahead"
    if stats["high"] < 0:
        return f"{b} ahead"
    return "not told apart"


def _sides(comparison: Dict):
    a, b = comparison["name"].split(" − ")
    return a, b


def headline_sentence(study: Dict) -> str:
    """One sentence: each net's arms ranked by mean AP (with the arms that failed at their
    rate), then which paired per-seed AP differences exclude 0, at 95 % and at the Bonferroni
    level."""
    seeds = len(study["seeds"])
    nets = []
    for net in study["nets"].values():
        ranked = sorted(net["arms"].values(), key=lambda arm: -arm["AP"]["mean"])
        ranking = " > ".join(f"{arm['label']} {arm['AP']['mean']:.3f}" for arm in ranked)
        failures = [f"{arm['label']} failed on {count} of {seeds} seeds at its swept rate"
                    for arm in ranked for count in [_failures(arm)] if count]
        nets.append(f"on {net['title'].split(' on ')[0]} {ranking}"
                    + (f" ({'; '.join(failures)})" if failures else ""))
    count = sum(len(net["comparisons"]) for net in study["nets"].values())
    return (f"What it shows, mean test AP over {seeds} seeds: " + "; ".join(nets) + "; "
            + f"of the {count} paired per-seed AP differences, " + _differences(study["nets"])
            + "." + _stable_sentence(study))


def _differences(nets: Dict) -> str:
    """Which paired per-seed AP differences exclude 0, at 95 % and at the Bonferroni level."""
    told, adjusted = [], []
    for net in nets.values():
        for c in net["comparisons"].values():
            a, b = _sides(c)
            said = verdict(c["paired"]["AP"], a, b)
            if said != "not told apart":
                told.append(f"{c['name']} ({said})")
                if verdict(c["paired_adjusted"]["AP"], a, b) == said:
                    adjusted.append(c["name"])
    return ((", ".join(told) + " " + ("excludes" if len(told) == 1 else "exclude")
             + " 0 at 95 % (" + (", ".join(adjusted) if adjusted else "none")
             + " at the Bonferroni level)" if told else "none excludes 0")
            + " and the others do not")


def _failures(arm: Dict) -> int:
    return sum(map(failed, arm["seeds"]))


def _stable_sentence(study: Dict) -> str:
    """The sensitivity analysis in one sentence: the arms at their stricter rates, ranked."""
    stable = (study.get("stable") or {}).get("nets") or {}
    moved = {name: [arm for key, arm in net["arms"].items()
                    if arm["base_lr"] != study["nets"][name]["arms"][key]["base_lr"]]
             for name, net in stable.items()}
    if not any(moved.values()):
        return ""
    nets = []
    for name, net in stable.items():
        ranked = sorted(net["arms"].values(), key=lambda arm: -arm["AP"]["mean"])
        nets.append(f"on {net['title'].split(' on ')[0]} " + " > ".join(
            f"{arm['label']} {arm['AP']['mean']:.3f}"
            + (f" (at {arm['base_lr']:g})" if arm in moved[name] else "") for arm in ranked))
    return (" With each rate one doubling clear of a failing rate (the sensitivity analysis, "
            "added after the first results): " + "; ".join(nets) + "; of its differences, "
            + _differences(stable) + ".")


def findings(study: Dict, sweep: Dict) -> str:
    bullets = [_comparison(c, study) for net in study["nets"].values()
               for c in net["comparisons"].values()]
    bullets += [_multiple(study), _rates(sweep), _diverged_at_pick(study), _stable(study),
                _no_prior(study), _flat(study), _imbalance(study)]
    return "What the numbers show:\n\n" + "\n".join(f"- {b}" for b in bullets if b)


def _comparison(c: Dict, study: Dict) -> str:
    a, b = _sides(c)
    ap, boot, adjusted = c["paired"]["AP"], c["bootstrap"]["AP"], c["paired_adjusted"]["AP"]
    said, said_adjusted = verdict(ap, a, b), verdict(adjusted, a, b)
    if said != said_adjusted:
        said += f" at 95 %, {said_adjusted} at the Bonferroni level"
    level = 100 * study["nets"]["detector"]["adjusted_confidence"]
    tail = (f"; the paper: {PAPER[c['name']]}" if c["name"] in PAPER else "")
    return (f"**{c['name']}: {said}.** {interval(ap, signed=True)} AP per paired seed (95 %); at "
            f"the {level:.2f} % level of {study['nets']['detector']['comparison_count']} "
            f"comparisons {interval(adjusted, signed=True)} ({verdict(adjusted, a, b)}); over "
            f"test images (paired bootstrap) {interval(boot, signed=True)} "
            f"({verdict(boot, a, b)}). AP50 {interval(c['paired']['AP50'], signed=True)} "
            f"({verdict(c['paired']['AP50'], a, b)}), AP75 "
            f"{interval(c['paired']['AP75'], signed=True)} "
            f"({verdict(c['paired']['AP75'], a, b)}){tail}.")


def _multiple(study: Dict) -> str:
    count = study["nets"]["detector"]["comparison_count"]
    return (f"**Reading the intervals.** AP is the primary metric, AP50 and AP75 secondary. "
            f"{count} comparisons are made on AP; at 95 % each, the chance that at least one "
            f"interval excludes 0 by luck alone is up to {min(1, 0.05 * count):.0%} (the "
            f"union bound, {count} × 5 %), so a verdict should hold at the "
            f"{100 * (1 - 0.05 / count):.2f} % (Bonferroni) level too. The per-seed interval "
            "measures how much the training seed moves a difference; the bootstrap interval how "
            "much the draw of the 320 test images does, for these seeds. A t-interval over seeds "
            "of which some failed can reach below 0 AP: it then says only that the seeds "
            "disagree. The sensitivity analysis (each rate one doubling clear of a failing one) "
            "was added after the first results were seen: read it as a check of how much the "
            "swept rates decide, not as further comparisons.")


def _rates(sweep: Optional[Dict]) -> str:
    if not sweep:
        return ""
    parts = []
    for name, arms in sweep["nets"].items():
        for arm in arms.values():
            failing = failure_boundary(arm)
            boundary = (f"failed from {failing:g}, " if failing is not None else "") + (
                f"diverged from {arm['boundary']:g}" if arm["boundary"] is not None
                else f"none diverged up to {arm['highest_tried']:g}")
            parts.append(f"{name} {arm['label']} {arm['picked']:g} ({boundary})")
    edge = [f"{a['label']}" for arms in sweep["nets"].values() for a in arms.values()
            if not a["interior"]]
    detector = sweep["nets"].get("detector", {})
    ratio = (f"FL γ=2's pick is {detector['focal']['picked'] / detector['ce']['picked']:g}x CE's"
             + (f", and CE diverged at {detector['ce']['boundary']:g}"
                if detector["ce"]["boundary"] is not None else "") + ". "
             if "focal" in detector and "ce" in detector else "")
    collapsed = [f"{a['label']} at {p['base_lr']:g}" for arms in sweep["nets"].values()
                 for a in arms.values() for p in a["points"]
                 if not p["diverged"] and p["AP"] < FAILED_AP]
    return ("**Each loss at its own rate.** Picked on the validation split (seed "
            f"{sweep['seed']}): " + "; ".join(parts) + ". " + ratio
            + ("Every pick is interior (a worse rate on each side)." if not edge else
               "At the edge of its grid: " + ", ".join(edge) + ".")
            + (f" Finite but failed (validation AP under {FAILED_AP:g}): " + ", ".join(collapsed)
               + "."
               if collapsed else ""))


def _diverged_at_pick(study: Dict) -> str:
    """The seeds that diverged, or trained to nothing (test AP under FAILED_AP without a
    non-finite loss), at their arm's swept rate: they count as such in the tables."""
    diverged, failed, total = [], [], 0
    for net in study["nets"].values():
        for arm in net["arms"].values():
            for seed in arm["seeds"]:
                total += 1
                if seed["diverged"]:
                    diverged.append(f"{arm['label']} seed {seed['seed']} (at iteration "
                                    f"{seed['diverged_at']})")
                elif seed["AP"] < FAILED_AP:
                    failed.append(f"{arm['label']} seed {seed['seed']} (test AP "
                                  f"{seed['AP']:.3f})")
    if not diverged and not failed:
        return (f"**No run diverged or failed at its swept rate** ({total} runs): the rates "
                "picked on the sweep's seed held on the study's seeds.")
    parts = []
    if diverged:
        parts.append(f"{len(diverged)} diverged: " + "; ".join(diverged))
    if failed:
        parts.append(f"{len(failed)} trained to nothing with finite losses: " + "; ".join(failed))
    return (f"**{len(diverged) + len(failed)} of {total} runs failed at their arm's swept "
            "rate**, which was picked on another seed; " + ". ".join(parts) + ". They count "
            "as they scored in the means and the paired differences, as a user who trained at "
            "that rate would get; the sweep's table shows how close each pick sits to a rate "
            "that failed.")


def _stable(study: Dict) -> str:
    """The sensitivity analysis: the arms whose stricter rate differs, and each comparison again
    with every arm at its stricter rate."""
    stable = (study.get("stable") or {}).get("nets") or {}
    parts, again = [], []
    for name, net in stable.items():
        for key, arm in net["arms"].items():
            swept = study["nets"][name]["arms"][key]
            if arm["base_lr"] != swept["base_lr"]:
                parts.append(f"{arm['label']} at {arm['base_lr']:g} (swept {swept['base_lr']:g}): "
                             f"{interval(arm['AP'])}, failed on {_failures(arm)} of "
                             f"{len(arm['seeds'])} seeds (at the swept rate "
                             f"{_failures(swept)})")
        for c in net["comparisons"].values():
            a, b = _sides(c)
            again.append(f"{c['name']} {interval(c['paired']['AP'], signed=True)} "
                         f"({verdict(c['paired']['AP'], a, b)}; Bonferroni "
                         f"{verdict(c['paired_adjusted']['AP'], a, b)})")
    if not parts:
        return ""
    return ("**Sensitivity to the rate pick.** A pick on one seed can sit one doubling below a "
            "rate that fails; the stricter rule takes the best rate whose double also trained in "
            "the sweep. It moves " + "; ".join(parts) + ". With every arm at its stricter rate, "
            "the paired per-seed AP differences: " + "; ".join(again) + ".")


def _no_prior(study: Dict) -> str:
    checks = study.get("no_prior") or {}
    if not checks:
        return ""
    parts = [f"{c['label']} at {c['base_lr']:g}: " + (
        f"diverged at iteration {c['diverged_at']}" if c["diverged"] else "finite")
        for c in checks.values()]
    diverged = sum(c["diverged"] for c in checks.values())
    stop = next(iter(checks.values()))["iterations"]
    rates = sorted({c["base_lr"] for c in checks.values()})
    at = (f"all at {rates[0]:g}, the lowest swept rate, so that a divergence is not a high "
          "rate's doing" if len(rates) == 1 else "at their swept rates")
    return (f"**Without the prior bias (class bias 0; the paper's Section 4.1), {diverged} of "
            f"{len(checks)} losses diverged** within the first {stop} iterations of the "
            f"protocol ({at}; one seed): " + "; ".join(parts) + ".")


def _flat(study: Dict) -> str:
    tolerance = study["flat_tolerance"]
    parts, total, flat = [], 0, 0
    for net in study["nets"].values():
        for arm in net["arms"].values():
            changes = [s["last_val_change"] for s in arm["seeds"]
                       if not failed(s) and s["last_val_change"] is not None]
            settled = sum(abs(change) <= tolerance for change in changes)
            total += len(changes)
            flat += settled
            if settled < len(changes):
                parts.append(f"{arm['label']} (last change {min(changes):+.3f} to "
                             f"{max(changes):+.3f})")
    last, before = _last_snapshots(study)
    head = (f"**Validation AP flattened** in {flat} of the {total} runs that trained (a failed "
            f"run's flat curve says nothing about the budget): the snapshots at {before} and "
            f"{last} agree within {tolerance:g} AP. The rate drops at 2/3 and 8/9 of the budget "
            "slow every curve, so agreement there is partly the schedule's doing.")
    return head + ((" Not within it: " + "; ".join(parts) + ".") if parts else "")


def _last_snapshots(study: Dict):
    curve = next(iter(next(iter(study["nets"].values()))["arms"].values()))["seeds"][0][
        "val_curve"]
    return curve[-1][0], curve[-2][0] if len(curve) > 1 else None


def _imbalance(study: Dict) -> str:
    data = study.get("data") or {}
    if "detector" not in data:
        return ""
    share = data["detector"]["train"]["positive_logit_share"]
    coco = [COCO_ANCHORS * COCO_CLASSES / (COCO_OBJECTS * k) for k in ASSUMED_ANCHORS_PER_OBJECT]
    low, high = ASSUMED_ANCHORS_PER_OBJECT
    return (f"**Imbalance against COCO's.** Here 1 positive in {1 / share:,.0f} class logits "
            f"(RetinaNet-lite's training anchors). On COCO RetinaNet scores about "
            f"{COCO_ANCHORS:,} anchors of {COCO_CLASSES} classes per image and COCO has "
            f"{COCO_OBJECTS:g} objects per image; at {high} to {low} positive anchors per object "
            f"(an assumption: the paper does not report it) that is 1 in {coco[1]:,.0f} to "
            f"{coco[0]:,.0f}, {coco[1] * share:.0f} to {coco[0] * share:.0f}x rarer than here: "
            "the easy negatives that focal loss down-weights are a smaller crowd here.")
