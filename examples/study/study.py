"""The detector study (`make study`): every arm of RetinaNet-lite and SSD-lite at each of SEEDS
at its swept rate under the study's protocol, scored by COCO AP on the test split; the no-prior
divergence checks; the statistics. `demo` is `make example`'s shorter, one-seed version.

Statistics (docs/examples.md, "How to read the study"). AP is the primary metric; AP50 and AP75
are secondary. Per arm: the mean over seeds and its 95 % t-interval. Per comparison (COMPARISONS,
a − b): the paired per-seed difference's t-interval (both arms of a seed share initial weights
and batches), at 95 % and at the Bonferroni level 1 − 0.05 / (number of comparisons), and the
paired bootstrap over test images of the seed-averaged difference (examples.common.bootstrap),
which measures how much the test set's draw moves it (the per-seed interval measures the seeds).
"""
import os
import time
from typing import Dict, List

import numpy as np

from ..common.bootstrap import paired_bootstrap
from ..common.progress import note, stage
from ..common.protocol import FLAT_TOLERANCE, Protocol, describe
from ..common.stats import CONFIDENCE, paired_difference, t_interval
from .runs import Job, Trained, run_jobs
from .scoring import FAILED_AP, METRICS, ap_curve, failed, headline, score, val_scores

# The comparison's seeds; the sweep's (examples.study.sweep.SWEEP_SEED) is not among them.
SEEDS = (1701, 1702, 1703, 1704)
QUICK_SEEDS = (1701, 1702)
# (name, a, b): a − b per net. The first is each net's question; the others are the paper's
# Table 1d (FL against OHEM) and Table 1b (γ = 1 against γ = 2).
COMPARISONS = {
    "detector": (("FL − CE", "focal", "ce"), ("FL − OHEM", "focal", "ohem"),
                 ("FL γ=1 − FL γ=2", "focal_g1", "focal")),
    "ssd": (("MultiBoxFocalLossLayer − MultiBoxLoss", "focal", "multibox"),),
}
STABLE_RULE = ("each arm at the best rate whose double also trained in the sweep (neither "
               "diverged nor scored validation AP under the failure threshold)")
DEMONSTRATION = ("a demonstration of every loss layer under the study's protocol at half its "
                 "budget, one seed per arm: not a comparison of the losses (make study is)")


def write_datasets(nets, out_dir: str, quick: bool):
    """Each net's scenes in out_dir/data/<net>/ (its QUICK_COUNTS with quick); returns
    ({net name: data folder}, {net name: the data's statistics})."""
    stage("data: the textured digit scenes of " + " and ".join(net.NAME for net in nets))
    dirs, stats = {}, {}
    for net in nets:
        dirs[net.NAME] = os.path.join(out_dir, "data", net.NAME)
        stats[net.NAME] = net.write_data(dirs[net.NAME], net.QUICK_COUNTS if quick else net.COUNTS)
        note(f"{net.NAME}: {stats[net.NAME]['summary']}")
    return dirs, stats


def run_study(nets, protocol: Protocol, out_dir: str, data_dirs: Dict[str, str], workers: int,
              quick: bool) -> Dict:
    started = time.monotonic()
    seeds = QUICK_SEEDS if quick else SEEDS
    jobs = [Job(net, key, net.RATES[key], seed, protocol, "seeds")
            for seed in seeds for net in nets for key in net.ARMS]
    # The sensitivity analysis: the arms whose stricter pick (STABLE_RATES, the best rate whose
    # double also trained in the sweep) differs, at the same seeds.
    stable = [Job(net, key, net.STABLE_RATES[key], seed, protocol, "stable")
              for seed in seeds for net in nets for key in net.ARMS
              if net.STABLE_RATES[key] != net.RATES[key]]
    # Section 4.1's claim: without the prior bias, training diverges. One check per loss of
    # RetinaNet-lite over the schedule's first check_stop iterations, all at the lowest swept
    # rate (CE's), so that a divergence is the missing prior's doing and not a high rate's.
    checks = [Job(net, key, min(net.RATES.values()), seeds[0], protocol, "check", prior=False,
                  stop=protocol.check_stop) for net in nets if net.NAME == "detector"
              for key in net.ARMS]
    stage(f"study: {len(jobs)} runs ({len(seeds)} seeds x every arm of {len(nets)} nets, "
          f"{protocol.max_iter:,} iterations), {len(stable)} at the stricter rates and "
          f"{len(checks)} no-prior checks, {workers} at a time")
    scored: Dict = {}
    run_jobs(jobs + stable + checks, out_dir, data_dirs, workers,
             lambda t: _score(t, data_dirs[t.job.net.NAME], scored))
    results = {"protocol": describe(protocol), "seeds": list(seeds), "workers": workers,
               "flat_tolerance": FLAT_TOLERANCE, "failed_ap": FAILED_AP, "nets": {},
               "stable": {"rule": STABLE_RULE, "nets": {}}}
    for net in nets:
        stage(f"statistics: {net.NAME}")
        data_dir = data_dirs[net.NAME]
        results["nets"][net.NAME] = _net_results(net, seeds, scored, data_dir, net.RATES)
        results["stable"]["nets"][net.NAME] = _net_results(net, seeds, scored, data_dir,
                                                           net.STABLE_RATES)
    results["no_prior"] = {key: scored["check", key] for key in
                           [j.key for j in checks]}
    results["study_seconds"] = time.monotonic() - started
    return results


def demo(nets, protocol: Protocol, out_dir: str, data_dirs: Dict[str, str], workers: int,
         seed: int = SEEDS[0]) -> Dict:
    """make example's part: every arm once at its swept rate; {net name: results}, each with
    "weights": {arm: its trained weights} (local paths, for the loss-share analysis)."""
    jobs = [Job(net, key, net.RATES[key], seed, protocol, "demo") for net in nets
            for key in net.ARMS]
    stage(f"detectors: {len(jobs)} runs (every arm of {len(nets)} nets, one seed, "
          f"{protocol.max_iter:,} iterations), {workers} at a time; {DEMONSTRATION}")
    scored: Dict = {}
    run_jobs(jobs, out_dir, data_dirs, workers,
             lambda t: _score(t, data_dirs[t.job.net.NAME], scored))
    out = {}
    for net in nets:
        runs = {key: scored[net.NAME, key, net.RATES[key], seed] for key in net.ARMS}
        out[net.NAME] = {"title": net.TITLE, "demonstration": DEMONSTRATION,
                         "protocol": describe(protocol), "seed": seed,
                         "arms": {key: _arm(net, key, [run]) for key, run in runs.items()},
                         "weights": {key: run["weights"] for key, run in runs.items()}}
    return out


def _score(trained: Trained, data_dir: str, scored: Dict) -> None:
    job = trained.job
    if job.kind == "check":
        scored["check", job.key] = dict(trained.summary(), label=job.net.ARMS[job.key]["label"])
        note(f"{job.label}: " + (f"diverged at iteration {trained.diverged_at}"
                                 if trained.diverged else "finite throughout"))
        return
    test = score(trained, data_dir, "test", trained.iterations)
    entry = dict(trained.summary(), val_curve=ap_curve(val_scores(trained, data_dir)), test=test,
                 weights=trained.run.weights)
    scored[job.net.NAME, job.key, job.rate, job.seed] = entry
    note(f"{job.label}: " + (f"diverged at iteration {trained.diverged_at}: AP 0"
                             if trained.diverged else
                             f"test AP {test['AP']:.3f}, AP50 {test['AP50']:.3f}; validation AP "
                             + ", ".join(f"{ap:.3f}" for _, ap in entry["val_curve"])))


def _arm(net, key: str, runs: List[Dict]) -> Dict:
    """One arm over its seeds: per seed its numbers and curves, whether it failed (diverged or
    trained to nothing) and whether validation AP flattened (last two snapshots within
    FLAT_TOLERANCE); per metric mean and t-interval; how many seeds failed, and how many of
    the others flattened (a failed run's flat curve says nothing about the budget)."""
    seeds = []
    for r in runs:
        curve = r["val_curve"]
        last_change = curve[-1][1] - curve[-2][1] if len(curve) > 1 else None
        seed = ({k: v for k, v in r.items() if k not in ("test", "weights")}
                | headline(r["test"]) | {"ap_per_class": r["test"].get("ap_per_class"),
                                         "last_val_change": last_change})
        seeds.append(seed | {"failed": failed(seed), "flat": last_change is not None
                             and abs(last_change) <= FLAT_TOLERANCE})
    out = {"label": net.ARMS[key]["label"], "base_lr": runs[0]["base_lr"], "seeds": seeds,
           "diverged": int(sum(r["diverged"] for r in runs)),
           "failed": int(sum(s["failed"] for s in seeds)),
           "flat": int(sum(s["flat"] and not s["failed"] for s in seeds))}
    for metric in METRICS:
        out[metric] = t_interval([r["test"][metric] for r in runs])
    if net.NAME == "detector" and runs[0]["test"].get("detections"):
        out["detections"] = net.drawn(runs[0]["test"]["detections"])
    return out


def _net_results(net, seeds, scored: Dict, data_dir: str, rates: Dict[str, float]) -> Dict:
    """Every arm at its rate in rates, and COMPARISONS, over the seeds."""
    runs = {key: [scored[net.NAME, key, rates[key], seed] for seed in seeds]
            for key in net.ARMS}
    comparisons = COMPARISONS[net.NAME]
    count = sum(len(c) for c in COMPARISONS.values())
    adjusted = 1 - (1 - CONFIDENCE) / count
    out = {"title": net.TITLE, "arms": {key: _arm(net, key, r) for key, r in runs.items()},
           "comparisons": {}, "comparison_count": count, "adjusted_confidence": adjusted}
    gt = net.ground_truth(data_dir, "test")
    for name, a, b in comparisons:
        values = {m: ([r["test"][m] for r in runs[a]], [r["test"][m] for r in runs[b]])
                  for m in METRICS}
        paired = {m: paired_difference(*values[m]) for m in METRICS}
        paired_adjusted = {m: paired_difference(*values[m], confidence=adjusted)
                           for m in METRICS}
        detections = [[_detections(r) for r in runs[key]] for key in (a, b)]
        boot = paired_bootstrap(gt, *detections)
        out["comparisons"][f"{a}-{b}"] = {"name": name, "a": a, "b": b, "paired": paired,
                                          "paired_adjusted": paired_adjusted, "bootstrap": boot}
        note(f"{name}: AP {paired['AP']['mean']:+.3f}, per-seed 95% CI "
             f"[{_f(paired['AP']['low'])}, {_f(paired['AP']['high'])}], bootstrap over images "
             f"[{boot['AP']['low']:+.3f}, {boot['AP']['high']:+.3f}]")
    return out


def _detections(run: Dict):
    """A run's test detections; none for a diverged run (AP 0)."""
    found = run["test"].get("detections")
    if found is None:
        return [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0),
                 "classes": np.zeros(0, np.int64)} for _ in range(run["test"]["images"])]
    return found


def _f(value) -> str:
    return "n/a" if value is None else f"{value:+.3f}"
