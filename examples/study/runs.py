"""Training runs of the study side by side: `caffe train` processes, `workers` at a time (each
on one thread: examples.common.training.SINGLE_THREADED), while this process scores the runs
that have finished.

A run that blows up is a result, not an error. It counts as diverged when `caffe train` stops on
a Python loss layer's error for non-finite logits, or for finite logits so large that the loss
overflows float32 (FocalLossLayer, HardNegativeLossLayer, MultiBoxFocalLossLayer), or when it
carries on with a NaN or infinite loss (C++ MultiBoxLoss does). Any other failure is an error.
"""
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Dict, Iterable, List, Optional

from ..common.caffe_log import read_log
from ..common.protocol import Protocol
from ..common.training import Run, train

# `caffe train` processes at a time, each single-threaded: on this 2-core machine two of them
# trained 1.7-2.2x the iterations per second of one process using every thread
# (python -m examples.study.throughput; docs/examples.md).
WORKERS = 2
# The layers' errors that mean the logits blew up (focal_loss_layer.fast, ohem_layer).
DIVERGED = ("non-finite", "overflows float32")


@dataclass(frozen=True)
class Job:
    """One run: arm `key` of a net (examples.detector.experiment or examples.ssd.experiment)
    at base_lr `rate` and random_seed `seed` under a protocol; prior=False trains the class
    bias from 0; stop ends the schedule early (the divergence checks)."""

    net: ModuleType
    key: str
    rate: float
    seed: int
    protocol: Protocol
    kind: str               # "sweep", "seeds", "check", "demo": the run folder's group
    prior: bool = True
    stop: Optional[int] = None

    @property
    def label(self) -> str:
        return (f"{self.net.NAME} {self.net.ARMS[self.key]['label']} lr {self.rate:g} seed "
                f"{self.seed}" + ("" if self.prior else ", bias 0")
                + (f", first {self.stop} it." if self.stop else ""))

    def run_dir(self, out_dir: str) -> str:
        name = f"lr{self.rate:g}_seed{self.seed}" + ("" if self.prior else "_bias0")
        return os.path.join(out_dir, "runs", self.net.NAME, self.kind, self.key, name)


@dataclass
class Trained:
    job: Job
    run: Run
    diverged: bool
    diverged_at: Optional[int]   # the first iteration logged with a non-finite loss, or the last
    train_seconds: float         # logged before the layer's error stopped Caffe
    train_curve: List[List[float]]

    @property
    def iterations(self) -> int:
        return self.job.stop or self.job.protocol.max_iter

    def snapshots(self) -> List[int]:
        """Iterations at which the main stage kept weights: every protocol.snapshot, and the
        last (Caffe snapshots when a solver ends, snapshot_after_train)."""
        step = self.job.protocol.snapshot
        return sorted(set(range(step, self.iterations, step)) | {self.iterations})

    def usable(self, iteration: int) -> bool:
        """Whether the weights of that snapshot exist and predate a divergence."""
        return (os.path.exists(self.run.snapshot(iteration))
                and (self.diverged_at is None or iteration < self.diverged_at))

    def summary(self) -> Dict:
        return {"key": self.job.key, "base_lr": self.job.rate, "seed": self.job.seed,
                "prior": self.job.prior, "iterations": self.iterations,
                "diverged": self.diverged, "diverged_at": self.diverged_at,
                "train_seconds": self.train_seconds, "train_curve": self.train_curve}


def run_jobs(jobs: Iterable[Job], out_dir: str, data_dirs: Dict[str, str], workers: int,
             on_done: Callable[[Trained], None]) -> List[Trained]:
    """Train every job, `workers` at a time; call on_done(trained) in this thread as each
    finishes (scoring overlaps the next runs' training); return them in the jobs' order."""
    jobs = list(jobs)
    runs = [job.net.prepare(job.key, job.rate, job.seed, job.protocol, data_dirs[job.net.NAME],
                            job.run_dir(out_dir), prior=job.prior, stop=job.stop)
            for job in jobs]
    done: Dict[int, Trained] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_train, job, run, workers > 1, f"{i + 1}/{len(jobs)}"): i
                   for i, (job, run) in enumerate(zip(jobs, runs))}
        for future in as_completed(futures):
            trained = future.result()
            on_done(trained)
            done[futures[future]] = trained
    return [done[i] for i in range(len(jobs))]


def _train(job: Job, run: Run, side_by_side: bool, number: str) -> Trained:
    started = time.monotonic()
    title = f"{number} {job.label}".ljust(60)
    diverged = False
    try:
        curve = [list(p) for p in train(run, title, single_threaded=side_by_side,
                                        progress=not side_by_side).train]
    except RuntimeError as failure:
        if not any(phrase in str(failure) for phrase in DIVERGED):
            raise
        diverged, curve = True, [list(p) for p in read_log(run.log).train]
    bad = [it for it, loss in curve if not math.isfinite(loss)]
    if bad:
        diverged = True
    at = bad[0] if bad else (int(curve[-1][0]) if diverged and curve else None)
    return Trained(job, run, diverged, at, time.monotonic() - started, curve)
