"""Scoring the study's runs: COCO AP on the validation split at every snapshot (the curves, and
the sweeps' picks) and on the test split at the end; a diverged run's weights score 0."""
from typing import Dict, List, Tuple

from .runs import Trained

METRICS = ("AP", "AP50", "AP75")
FAILED_AP = 0.01   # a run scoring under this trained to nothing, diverged or not


def failed(run: Dict) -> bool:
    """Whether a scored run (a sweep point: validation AP; a study seed: test AP) diverged or
    trained to nothing."""
    return run["diverged"] or run["AP"] < FAILED_AP


def score(trained: Trained, data_dir: str, split: str, iteration: int) -> Dict:
    """The net's metrics (with "detections") of a run's snapshot on a split; zeros, with no
    detections, for weights past a divergence."""
    net = trained.job.net
    if not trained.usable(iteration):
        images = len(net.ground_truth(data_dir, split).getImgIds())
        return dict({m: 0.0 for m in METRICS}, detections=None, images=images)
    return net.score(data_dir, split, trained.run.snapshot(iteration), trained.job.key)


def val_scores(trained: Trained, data_dir: str) -> List[Tuple[int, Dict]]:
    """(iteration, validation metrics) at every snapshot, the last at the run's end."""
    return [(it, score(trained, data_dir, "val", it)) for it in trained.snapshots()]


def ap_curve(scores: List[Tuple[int, Dict]]) -> List[List[float]]:
    """[iteration, AP] of each (iteration, metrics): the results' "val_curve"."""
    return [[it, metrics["AP"]] for it, metrics in scores]


def headline(metrics: Dict) -> Dict:
    return {m: metrics[m] for m in METRICS}
