"""The learning-rate sweep (`make sweep`): per arm, base_lr chosen on the validation split from
rates a factor 2 apart, each trained under the study's protocol at one seed (SWEEP_SEED, which
the comparison on the test split does not reuse).

    1. Every arm at its starting grid (GRIDS). While an arm's best rate (final validation AP) is
       the highest it tried (and that one did not diverge), add twice it; while it is the
       lowest, add half of it. The pick is then interior: a worse rate on either side.
    2. The divergence boundary, the lowest rate that diverged: when no full-budget rate of an arm
       diverged, runs of the schedule's first protocol.check_stop iterations at twice the
       highest rate, then twice that, ..., until one diverges or PROBES of them did not.

A run diverges as examples.study.runs defines it; its AP counts as 0. Each arm also gets a
stricter pick for the study's sensitivity analysis, stable_pick: the best rate whose double
also trained.
"""
import math
import time
from typing import Dict, List, Optional

from ..common.progress import note, stage
from ..common.protocol import Protocol, describe
from .runs import Job, Trained, run_jobs
from .scoring import ap_curve, failed, headline, val_scores

SWEEP_SEED = 1801
# Starting grids, a factor 2 apart, around where each loss trained best in earlier runs (a
# review's SGD runs: FL best at 0.04, the top of its grid, CE diverging there); FL's gradients
# are ~15x smaller than CE's at the start (docs/examples.md), so its grid sits higher.
GRIDS = {
    "detector": {"focal": (0.02, 0.04, 0.08), "ce": (0.005, 0.01, 0.02),
                 "ohem": (0.005, 0.01, 0.02), "focal_g1": (0.01, 0.02, 0.04)},
    "ssd": {"multibox": (0.01, 0.02, 0.04), "focal": (0.01, 0.02, 0.04)},
}
PROBES = 4
MAX_ROUNDS = 6


def sweep(nets, protocol: Protocol, out_dir: str, data_dirs: Dict[str, str], workers: int,
          grids=GRIDS, probes: int = PROBES) -> Dict:
    """{net name: {arm key: {"points", "picked", "boundary", "probes"}}} (module docstring)."""
    started = time.monotonic()
    points: Dict = {(net.NAME, key): [] for net in nets for key in grids[net.NAME]}
    by_name = {net.NAME: net for net in nets}
    pending = [(net.NAME, key, rate) for net in nets for key in grids[net.NAME]
               for rate in grids[net.NAME][key]]
    for round_number in range(1, MAX_ROUNDS + 1):
        if not pending:
            break
        stage(f"rate sweep, round {round_number}: {len(pending)} runs of {protocol.max_iter} "
              f"iterations, validation AP, seed {SWEEP_SEED}")
        jobs = [Job(by_name[name], key, rate, SWEEP_SEED, protocol, "sweep")
                for name, key, rate in pending]
        run_jobs(jobs, out_dir, data_dirs, workers,
                 lambda t: _record(t, points, data_dirs[t.job.net.NAME]))
        pending = [(name, key, rate) for (name, key), pts in points.items()
                   for rate in _extension(pts)]

    stage("divergence boundaries: the first "
          f"{protocol.check_stop} iterations at twice the highest rate, doubling until a run diverges")
    probed: Dict = {pair: [] for pair in points}
    for _ in range(probes):
        pending = [(name, key, 2 * max([p["base_lr"] for p in points[name, key]]
                                       + [p["base_lr"] for p in probed[name, key]]))
                   for (name, key) in points
                   if not any(p["diverged"] for p in points[name, key] + probed[name, key])]
        if not pending:
            break
        jobs = [Job(by_name[name], key, rate, SWEEP_SEED, protocol, "probe", stop=protocol.check_stop)
                for name, key, rate in pending]
        for trained in run_jobs(jobs, out_dir, data_dirs, workers, lambda t: None):
            probed[trained.job.net.NAME, trained.job.key].append(_probe(trained))

    out: Dict = {name: {} for name in by_name}
    for (name, key), pts in points.items():
        pts.sort(key=lambda p: p["base_lr"])
        diverged = [p["base_lr"] for p in pts + probed[name, key] if p["diverged"]]
        out[name][key] = {"label": by_name[name].ARMS[key]["label"], "points": pts,
                          "picked": _best(pts)["base_lr"],
                          "interior": pts[0]["base_lr"] < _best(pts)["base_lr"] < pts[-1]["base_lr"],
                          "probes": probed[name, key],
                          "boundary": min(diverged) if diverged else None,
                          "highest_tried": max(p["base_lr"] for p in pts + probed[name, key])}
        note(f"{name} {out[name][key]['label']}: picked lr {out[name][key]['picked']:g}; "
             f"lowest diverged: {out[name][key]['boundary']}")
    return {"seed": SWEEP_SEED, "split": "val", "protocol": describe(protocol),
            "check_stop": protocol.check_stop, "nets": out, "sweep_seconds": time.monotonic() - started}


def _record(trained: Trained, points: Dict, data_dir: str) -> None:
    scores = val_scores(trained, data_dir)
    final = scores[-1][1]                # Trained.snapshots() ends at the run's end
    point = dict(trained.summary(), val_curve=ap_curve(scores), **headline(final))
    points[trained.job.net.NAME, trained.job.key].append(point)
    note(f"{trained.job.label}: " + ("diverged at iteration "
                                     f"{trained.diverged_at}" if trained.diverged else
                                     f"validation AP {final['AP']:.3f}"))


def _probe(trained: Trained) -> Dict:
    note(f"{trained.job.label}: " + ("diverged at iteration "
                                     f"{trained.diverged_at}" if trained.diverged else
                                     "did not diverge"))
    return trained.summary()


def _best(points: List[Dict]) -> Dict:
    """The point of highest final validation AP (a tie goes to the lower rate)."""
    return max(sorted(points, key=lambda p: p["base_lr"]), key=lambda p: p["AP"])


def stable_pick(points: List[Dict]) -> Optional[float]:
    """The rate of highest validation AP among those whose double was also trained at the full
    budget without failing (diverging, or validation AP under FAILED_AP): a pick one doubling
    clear of a failing rate, which a pick on one seed can sit next to. None if no rate
    qualifies."""
    trained = [p["base_lr"] for p in points if not failed(p)]
    safe = [p for p in points if not failed(p)
            and any(math.isclose(2 * p["base_lr"], rate) for rate in trained)]
    return _best(safe)["base_lr"] if safe else None


def _extension(points: List[Dict]) -> List[float]:
    """The rate to add so that the best one gets a worse neighbour on each side, if any: twice
    the highest when it is the best (and did not diverge), half the lowest when it is the best or
    every rate diverged. An end tied with its neighbour is not extended (a flat end has its
    worse-or-equal side)."""
    ordered = sorted(points, key=lambda p: p["base_lr"])
    best = _best(points)
    if all(p["diverged"] for p in points):
        return [ordered[0]["base_lr"] / 2]
    if best is ordered[-1] and not best["diverged"] and (
            len(ordered) == 1 or best["AP"] > ordered[-2]["AP"]):
        return [2 * best["base_lr"]]
    if best is ordered[0] and len(ordered) > 1 and best["AP"] > ordered[1]["AP"]:
        return [best["base_lr"] / 2]
    return []
