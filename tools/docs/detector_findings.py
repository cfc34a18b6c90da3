"""The detector study's findings in words (docs/examples.md, region `detector-findings`).

Every number, and every word that depends on one ("contains 0", "CE is ahead", "did not diverge",
"rose at every snapshot"), is computed here from results.json's `detector` (written by
`make example`), so a new run rewrites the sentences together with the tables they describe.
"""
from typing import Dict, List, Sequence

from examples.detector.report import PAPER_TABLE_1, interval


def findings(det: Dict) -> str:
    """The bullet list under the detector's tables, then the per-class AP table."""
    arms, pairs = det["arms"], det["paired"]
    bullets = [_fl_against_ce(det), _prior_effect(arms, pairs), _no_prior(arms),
               _still_learning(arms), _figure_4(arms)]
    return ("What the numbers show:\n\n" + "\n".join(_bullet(b) for b in bullets if b)
            + "\n\n" + _per_class_table(arms))


def _fl_against_ce(det: Dict) -> str:
    arms, pair = det["arms"], det["paired"]["FL − CE, prior bias"]
    ap = pair["AP"]
    level = _contains_zero(ap)
    head = ("**With the prior bias, FL and CE are not told apart in AP.**" if level else
            f"**With the prior bias, {_leader(ap)} has the higher AP.**")
    focal, ce = arms["focal"], arms["ce"]
    spans = {name: _span([s["AP"] for s in arm["seeds"]]) for name, arm in (("FL", focal), ("CE", ce))}
    classes = len(focal["ap_per_class"][0])
    ce_higher = sum(c > f for f, c in zip(_class_means(focal), _class_means(ce)))
    paper = PAPER_TABLE_1
    paper_ahead = "FL" if paper["focal"]["AP"] > paper["ce"]["AP"] else "CE"
    as_paper = (not level) and _leader(ap) == paper_ahead
    return (f"{head} FL − CE is {interval(ap, signed=True)} AP (mean [95 % interval]) over "
            f"{ap['n']} paired seeds: the interval {'contains' if level else 'excludes'} 0. At IoU 0.5 "
            f"{_who(pair['AP50'])} ({interval(pair['AP50'], signed=True)}); at IoU 0.75 "
            f"{_who(pair['AP75'])} ({interval(pair['AP75'], signed=True)}). Over seeds FL's AP spans "
            f"{spans['FL']}, CE's {spans['CE']}; CE's mean per-class AP (the table below) is the higher "
            f"on {'all ' + str(classes) if ce_higher == classes else f'{ce_higher} of the {classes}'} "
            f"digits. This {'agrees with' if as_paper else 'differs from'} the paper's Table 1 "
            f"({paper_ahead} ahead: FL {paper['focal']['AP']} against CE {paper['ce']['AP']} AP on "
            f"COCO, ResNet-50-FPN, 90k iterations), and it is one small setting: {classes} classes, "
            f"{det['data']['anchors_per_image']:,} anchors per image, {det['schedule']['max_iter']} "
            "iterations.")


def _prior_effect(arms: Dict, pairs: Dict) -> str:
    gains = {"FL": pairs["FL: prior − bias 0"]["AP"], "CE": pairs["CE: prior − bias 0"]["AP"]}
    loss_gap = abs(pairs["FL − CE, prior bias"]["AP"]["mean"])
    both_above = all(g["low"] is not None and g["low"] > 0 for g in gains.values())
    largest = both_above and min(g["mean"] for g in gains.values()) > loss_gap
    head = ("**The prior bias is what matters most here.**" if largest else
            "**The prior bias.**")
    return (f"{head} Without it the arms end at AP {arms['focal_noprior']['AP']['mean']:.3f} (FL) "
            f"and {arms['ce_noprior']['AP']['mean']:.3f} (CE); the prior adds "
            f"{interval(gains['FL'], signed=True)} (FL) and {interval(gains['CE'], signed=True)} (CE) "
            "per paired seed" + (", intervals above 0, more than the FL − CE difference."
                                 if largest else "."))


def _no_prior(arms: Dict) -> str:
    """Divergence, and the training loss from iteration 0 (every class logit 0, p = 0.5) to the end."""
    parts = []
    for name, key in (("CE", "ce_noprior"), ("FL", "focal_noprior")):
        seeds = arms[key]["seeds"]
        start = _span([s["curves"]["train"][0][1] for s in seeds], "{:.0f}")
        end = _span([s["curves"]["train"][-1][1] for s in seeds], "{:.2f}")
        val = _span([dict(s["curves"]["test"])[s["val_curve"][0][0]] for s in seeds], "{:.1f}")
        parts.append((name, arms[key]["diverged"], len(seeds), start, end, val, seeds))
    ce = parts[0]
    first_val = ce[6][0]["val_curve"][0][0]
    last = ce[6][0]["curves"]["train"][-1][0]
    verdict = ("did not diverge" if ce[1] == 0 else f"diverged in {ce[1]} of {ce[2]} seeds")
    losses = "; ".join(f"{name}: training loss {start} at iteration 0, {end} at {last}, "
                       f"validation loss {val} at {first_val}" for name, _, _, start, end, val, _ in parts)
    tail = (" It trained badly instead of blowing up, under Adam; the paper (Section 4.1) reports "
            "CE without the prior diverging with SGD, which was not run here." if ce[1] == 0 else "")
    return (f"**CE without the prior {verdict}** ({ce[2] - ce[1]} of {ce[2]} seeds finite; FL "
            f"without it: {parts[1][1]} of {parts[1][2]} diverged; the layer stops Caffe at the first "
            f"non-finite logit). At iteration 0 every class logit is 0 (p = 0.5): {losses}.{tail}")


def _still_learning(arms: Dict) -> str:
    rising = [arm["label"] for arm in arms.values() if _increasing(_mean_val_curve(arm))]
    if len(rising) == len(arms):
        return ("**Still learning at the end.** Every arm's validation AP (mean over seeds, the "
                "table below) rose at every snapshot: the comparison is at this budget, not at "
                "convergence.")
    return ("**Validation AP** (mean over seeds, the table below) rose at every snapshot for "
            + (", ".join(rising) or "no arm") + "; the others levelled off or fell before the end.")


def _figure_4(arms: Dict) -> str:
    share = arms["focal"].get("loss_share")
    if not share:
        return ""
    easiest = share["negatives"]["easiest"]
    focal, cross_entropy = easiest["2.0"]["0.9"], easiest["0.0"]["0.9"]
    holds = focal < 0.1 * cross_entropy   # the paper's Figure 4: easy negatives lose most of their share
    return (f"**Figure 4 {'holds' if holds else 'does not hold'} on the FL net:** its easiest 90 % "
            f"of the {share['negatives']['count'] / 1e6:.1f} M negative class logits of "
            f"{share['images']} test scenes carry {focal:.1%} of the focal loss (γ = 2) but "
            f"{cross_entropy:.1%} of the cross-entropy (γ = 0); the CE net's shares are in the line "
            "under the tables (`detector_loss_share.png`, log axis).")


def _per_class_table(arms: Dict) -> str:
    keys = ("focal", "ce")
    classes = len(arms["focal"]["ap_per_class"][0])
    seeds = len(arms["focal"]["ap_per_class"])
    lines = [f"| test AP per digit, mean of {seeds} seeds | " + " | ".join(map(str, range(classes))) + " |",
             "|---|" + "---|" * classes]
    for key in keys:
        lines.append(f"| {arms[key]['label']} | "
                     + " | ".join(f"{m:.3f}" for m in _class_means(arms[key])) + " |")
    return "\n".join(lines)


def _class_means(arm: Dict) -> List[float]:
    per_seed = arm["ap_per_class"]
    return [sum(seed[c] for seed in per_seed) / len(per_seed) for c in range(len(per_seed[0]))]


def _mean_val_curve(arm: Dict) -> List[float]:
    curves = [[ap for _, ap in seed["val_curve"]] for seed in arm["seeds"] if not seed["diverged"]]
    return [sum(points) / len(points) for points in zip(*curves)]


def _increasing(values: Sequence[float]) -> bool:
    return all(b > a for a, b in zip(values, values[1:]))


def _contains_zero(stats: Dict) -> bool:
    return stats["low"] is None or stats["low"] <= 0 <= stats["high"]


def _leader(stats: Dict) -> str:
    return "FL" if stats["mean"] > 0 else "CE"


def _who(stats: Dict) -> str:
    """For an FL − CE difference: 'they are level' when its interval contains 0, else who is ahead."""
    return "they are level" if _contains_zero(stats) else f"{_leader(stats)} is ahead"


def _span(values: Sequence[float], form: str = "{:.3f}") -> str:
    return form.format(min(values)) + "–" + form.format(max(values))


def _bullet(text: str) -> str:
    return "- " + text


def lr_sweep_findings(sweep: Dict) -> str:
    """Whether each loss's picked rate is interior (neither the smallest nor the largest swept)."""
    interior = []
    for key, means in sweep["mean_AP"].items():
        rates = sorted(float(rate) for rate in means)
        interior.append(rates[0] < sweep["picked"][key] < rates[-1])
    if all(interior):
        return "Both picks are interior (neither the smallest nor the largest rate swept)."
    return ("Not every pick is interior (a pick at the edge of the swept rates: a wider sweep "
            "could do better there).")


def gamma_sweep_findings(sweep: Dict, det: Dict, wall_seconds: float) -> str:
    """Which γ scored highest on each seed; whether the γ = 0 and γ = 2 points repeat the study's
    CE and FL runs of the same seeds; the sweep's wall time."""
    points = list(sweep["points"].values())
    best = []
    for index, seed in enumerate(sweep["seeds"]):
        top = max(points, key=lambda point: point["seeds"][index]["AP"])
        best.append((seed, top["gamma"]))
    gammas = {gamma for _, gamma in best}
    if len(gammas) == 1:
        winner = f"γ = {best[0][1]:g} scored highest on every seed"
    else:
        winner = "; ".join(f"γ = {gamma:g} scored highest on seed {seed}" for seed, gamma in best)
    repeats = []
    for gamma, arm in ((0.0, "ce"), (2.0, "focal")):
        rate = det["arms"][arm]["base_lr"]
        point = next((p for p in points if p["gamma"] == gamma and p["base_lr"] == rate), None)
        study = {s["seed"]: s["AP"] for s in det["arms"][arm]["seeds"]}
        if point is not None:
            repeats.append(all(abs(s["AP"] - study.get(s["seed"], float("nan"))) < 1e-6
                               for s in point["seeds"]))
    same = (" The γ = 0 and γ = 2 rows repeat `make example`'s CE and FL runs of the same seeds "
            "exactly (same data, seeds and nets)." if repeats and all(repeats) else
            " The γ = 0 and γ = 2 rows differ from `make example`'s CE and FL runs of the same seeds.")
    minutes = f"{int(wall_seconds // 60)} min {round(wall_seconds % 60)} s"
    return f"{winner} (the table above).{same} The sweep took {minutes} (wall clock, shared machine)."
