"""The detector study: four arms (prototxt.LOSSES: FL and α-balanced CE, each with and without
the prior bias) trained by `caffe train` over several seeds at fixed learning rates, each seed
scored by COCO AP on the test split, with validation AP at every snapshot; then the mean and 95 %
t-interval per arm and the paired per-seed difference FL - CE (examples.common.stats).

Fairness: every arm trains the same net from the same initial weights (random_seed) on the same
batches, with the same solver and schedule; arms differ in the FocalLossLayer's param_str and
the class bias's filler only. Rates: prototxt.RATES, fixed from lr_sweep (validation AP averaged
over SWEEP_SEEDS, never the test split).

    run(out_dir, quick, solver)         -> results["detector"]     (make example)
    lr_sweep(out_dir, quick, solver)    -> the rate sweep          (python -m examples.detector
    gamma_sweep(out_dir, quick, solver) -> the γ sweep              --lr-sweep / --gamma-sweep)
"""
import os
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Tuple

import numpy as np

from ..common.caffe_log import read_log
from ..common.progress import note, stage
from ..common.stats import paired_difference, t_interval
from ..common.training import REPO, prepare_run, train
from . import data as detector_data
from .coco_eval import coco_ground_truth, evaluate
from .inference import deploy_outputs, detect
from .log_outputs import read_test_losses
from .prototxt import LOSSES, NUM_CLASSES, RATES, TRAIN_BATCH, base_lr, train_net_of
from .scenes import CANVAS
from .share import anchor_loss_share

NAME = "detector"
TITLE = "detector: RetinaNet-lite on textured digit scenes, COCO AP"
PROTOTXT = os.path.join(REPO, "prototxt", "detector")
DEPLOY = os.path.join(PROTOTXT, "deploy.prototxt")
FIGURE_IMAGES = 4   # test images drawn with each arm's detections (examples.detector.figures)
DRAW_SCORE = 0.3    # detections drawn from this score up (AP counts every one down to 0.05)
METRICS = ("AP", "AP50", "AP75")
# The paired differences reported: (name, arm a, arm b), a - b per seed.
PAIRS = (("FL − CE, prior bias", "focal", "ce"),
         ("FL − CE, bias 0", "focal_noprior", "ce_noprior"),
         ("FL: prior − bias 0", "focal", "focal_noprior"),
         ("CE: prior − bias 0", "ce", "ce_noprior"))
# The learning-rate sweep (python -m examples.detector --lr-sweep): per loss, three rates a
# factor of 2 apart around where each loss's best rate lay before, every one at each sweep seed.
SWEEP_RATES = {"focal": (0.001, 0.002, 0.004), "ce": (0.002, 0.004, 0.008)}
SWEEP_SEEDS = (1801, 1802)
# The γ sweep (python -m examples.detector --gamma-sweep), like the paper's Table 1b: γ with
# the α the paper found best for it; γ = 0 at CE's rate, the others at FL's.
GAMMA_SWEEP = ((0.0, 0.75), (0.5, 0.5), (1.0, 0.25), (2.0, 0.25), (5.0, 0.25))


@dataclass(frozen=True)
class Schedule:
    """counts: scenes per split; snapshot: iterations between the validation-AP points;
    seeds: random_seed of each arm's runs."""

    counts: Dict[str, int]
    max_iter: int
    stepsize: int
    snapshot: int
    seeds: Tuple[int, ...]
    share_images: int   # test images whose anchors the loss-share analysis uses


SOLVERS = ("Adam", "SGD")
# 600 iterations of batch 8 (6 epochs of the training scenes), rate x0.1 after 450: 4 arms x 4
# seeds fit in the detector's ~11 minutes on 2 idle cores. Validation AP and loss every 150.
FULL = Schedule(counts={"train": 800, "val": 96, "test": 320}, max_iter=600, stepsize=450,
                snapshot=150, seeds=(1701, 1702, 1703, 1704), share_images=100)
QUICK = Schedule(counts={"train": 64, "val": 16, "test": 16}, max_iter=30, stepsize=20,
                 snapshot=15, seeds=(1701, 1702), share_images=8)


def run(out_dir: str, quick: bool, solver: str = "Adam") -> Dict:
    """Every arm at every seed; results["detector"] (keys below, figures.py and report.py)."""
    started = time.monotonic()
    schedule = QUICK if quick else FULL
    data_dir, runs_dir = _prepare(out_dir, schedule, solver)
    results = _header(schedule, solver)
    results["data"] = _write_data(data_dir, schedule)
    val_gt, test_gt = _ground_truth(data_dir, "val"), _ground_truth(data_dir, "test")

    jobs = [(key, seed) for seed in schedule.seeds for key in LOSSES]
    stage(f"{NAME}: {len(LOSSES)} arms x {len(schedule.seeds)} seeds, {solver}, "
          f"{schedule.max_iter} iterations each; validation AP every {schedule.snapshot}")
    trained = {}
    for number, (key, seed) in enumerate(jobs, 1):
        rate = base_lr(key)
        info = _train(_solver_template(key), key, solver, rate, seed, schedule, data_dir, runs_dir,
                      f"{number}/{len(jobs)} {LOSSES[key]['label']} seed {seed}")
        info["val_curve"] = _val_curve(info, schedule, data_dir, val_gt)
        info["test"] = _score(info["weights"], info["diverged"], data_dir, "test", test_gt,
                              keep_detections=seed == schedule.seeds[0])
        trained[key, seed] = info
        note(f"{LOSSES[key]['label']} seed {seed}: " + (
            "diverged (non-finite logits): AP 0" if info["diverged"] else
            f"test AP {info['test']['AP']:.3f}, AP50 {info['test']['AP50']:.3f}; validation AP "
            + ", ".join(f"{ap:.3f}" for _, ap in info["val_curve"])))

    results["arms"] = {key: _arm_summary(key, [trained[key, s] for s in schedule.seeds])
                       for key in LOSSES}
    results["paired"] = {name: dict(a=a, b=b, **{m: paired_difference(
        [s[m] for s in results["arms"][a]["seeds"]], [s[m] for s in results["arms"][b]["seeds"]])
        for m in METRICS}) for name, a, b in PAIRS}
    for name, pair in results["paired"].items():
        ap = pair["AP"]
        note(f"{name}: AP difference {ap['mean']:+.3f}, 95% CI [{ap['low']:+.3f}, "
             f"{ap['high']:+.3f}] over {ap['n']} seeds")

    stage(f"{NAME}: loss share of the prior-bias nets' test anchors (the paper's Figure 4)")
    for key in ("focal", "ce"):
        info = trained[key, schedule.seeds[0]]
        results["arms"][key]["loss_share"] = None if info["diverged"] else anchor_loss_share(
            DEPLOY, info["weights"], data_dir, schedule.share_images)
    results["wall_time_seconds"] = time.monotonic() - started
    note(f"the detector part took {results['wall_time_seconds']:.0f}s")
    return results


def lr_sweep(out_dir: str, quick: bool, solver: str = "Adam") -> Dict:
    """FL and CE (prior bias) at each of SWEEP_RATES and SWEEP_SEEDS, scored by COCO AP on the
    validation split; per rate the mean over seeds; the best mean is the pick (prototxt.RATES
    holds the committed picks)."""
    schedule = QUICK if quick else FULL
    rates = {key: r[:2] for key, r in SWEEP_RATES.items()} if quick else SWEEP_RATES
    data_dir, runs_dir = _prepare(out_dir, schedule, solver, "lr_sweep")
    results = _header(schedule, solver)
    results.update(data=_write_data(data_dir, schedule), seeds=list(SWEEP_SEEDS), split="val",
                   rates_in_code=dict(RATES))
    val_gt = _ground_truth(data_dir, "val")
    jobs = [(key, rate, seed) for key in rates for rate in rates[key] for seed in SWEEP_SEEDS]
    stage(f"{NAME}: learning-rate sweep, {len(jobs)} runs, COCO AP on the validation split")
    points: Dict[str, List[Dict]] = {key: [] for key in rates}
    for number, (key, rate, seed) in enumerate(jobs, 1):
        info = _train(_solver_template(key), key, solver, rate, seed, schedule, data_dir, runs_dir,
                      f"{number}/{len(jobs)} {LOSSES[key]['label']} lr {rate:g} seed {seed}")
        metrics = _score(info["weights"], info["diverged"], data_dir, "val", val_gt)
        points[key].append({"base_lr": rate, "seed": seed, "diverged": info["diverged"],
                            "train_seconds": info["train_seconds"], **_headline(metrics)})
        note(f"{LOSSES[key]['label']} lr {rate:g} seed {seed}: validation AP {metrics['AP']:.3f}")
    results["points"] = points
    results["mean_AP"] = {key: {f"{rate:g}": float(np.mean([p["AP"] for p in pts
                                                              if p["base_lr"] == rate]))
                                for rate in rates[key]} for key, pts in points.items()}
    results["picked"] = {key: float(max(means, key=means.get))
                         for key, means in results["mean_AP"].items()}
    note("picked (best mean validation AP): " + ", ".join(
        f"{LOSSES[k]['label']} lr {r:g}" for k, r in results["picked"].items()))
    return results


def gamma_sweep(out_dir: str, quick: bool, solver: str = "Adam") -> Dict:
    """FL with γ in GAMMA_SWEEP (α the paper's best for each γ), prior bias, at each seed of the
    schedule's first two; COCO AP on the test split, mean and t-interval per γ."""
    schedule = QUICK if quick else FULL
    seeds = schedule.seeds[:2]
    data_dir, runs_dir = _prepare(out_dir, schedule, solver, "gamma_sweep")
    results = _header(schedule, solver)
    results.update(data=_write_data(data_dir, schedule), seeds=list(seeds), split="test")
    test_gt = _ground_truth(data_dir, "test")
    jobs = [(gamma, alpha, seed) for gamma, alpha in GAMMA_SWEEP for seed in seeds]
    stage(f"{NAME}: γ sweep, {len(jobs)} runs, COCO AP on the test split")
    points: Dict[str, Dict] = {}
    for number, (gamma, alpha, seed) in enumerate(jobs, 1):
        key = f"gamma{gamma:g}"
        param = {"focusing_parameter": gamma, "alpha": alpha}
        rate = RATES["ce"] if gamma == 0 else RATES["focal"]
        label = f"γ={gamma:g}, α={alpha:g}"
        template = _write_template(os.path.join(runs_dir, key), key, label, param)
        info = _train(template, key, solver, rate, seed, schedule, data_dir, runs_dir,
                      f"{number}/{len(jobs)} {label} seed {seed}")
        metrics = _score(info["weights"], info["diverged"], data_dir, "test", test_gt)
        entry = points.setdefault(key, {"gamma": gamma, "alpha": alpha, "base_lr": rate,
                                        "seeds": []})
        entry["seeds"].append({"seed": seed, "diverged": info["diverged"], **_headline(metrics)})
        note(f"{label} seed {seed}: test AP {metrics['AP']:.3f}")
    for entry in points.values():
        for metric in METRICS:
            entry[metric] = t_interval([s[metric] for s in entry["seeds"]])
    results["points"] = points
    return results


def _prepare(out_dir: str, schedule: Schedule, solver: str, study: str = "") -> Tuple[str, str]:
    data_dir = os.path.join(out_dir, "data", NAME)
    runs_dir = os.path.join(out_dir, "runs", NAME + (f"_{study}" if study else ""), solver)
    return data_dir, runs_dir


def _header(schedule: Schedule, solver: str) -> Dict:
    return {"title": TITLE, "solver": solver, "schedule": asdict(schedule),
            "arms": {}, "losses": {key: {"label": arm["label"], "param": arm["param"],
                                         "prior": arm["prior"], "base_lr": base_lr(key)}
                                   for key, arm in LOSSES.items()}}


def _write_data(data_dir: str, schedule: Schedule) -> Dict:
    stage(f"{NAME}: data (textured digit scenes, anchors and targets)")
    stats = detector_data.write_data(data_dir, schedule.counts)
    note(describe(stats))
    return stats


def describe(stats: Dict) -> str:
    train = stats["train"]
    anchors = train["anchors"]
    return (f"{stats['train']['scenes']} / {stats['val']['scenes']} / {stats['test']['scenes']} "
            f"scenes (train / val / test, digits and backgrounds from disjoint sources); "
            f"{stats['anchors_per_image']:,} anchors per image; train: "
            f"{train['positives_per_image']:.1f} positive anchors per image, "
            f"{anchors['negatives_per_positive']:.0f} negatives per positive, positives 1 in "
            f"{1 / train['positive_logit_share']:,.0f} class logits; negative anchors nearly "
            f"blank {100 * anchors['negative_share_nearly_blank']:.1f}%, without ink "
            f"{100 * anchors['negative_share_without_ink']:.1f}%")


def _solver_template(key: str) -> str:
    return os.path.join(PROTOTXT, f"solver_{key}.prototxt")


def _write_template(folder: str, key: str, label: str, param: Dict) -> str:
    """A solver and train net for a γ-sweep point (the committed solver with this net)."""
    os.makedirs(folder, exist_ok=True)
    net = os.path.join(folder, "template_net.prototxt")
    with open(net, "w") as f:
        f.write(train_net_of(key, label, param, prior=True))
    with open(_solver_template("focal")) as f:
        lines = [f'net: "{net}"' if line.startswith("net:") else line for line in f]
    solver = os.path.join(folder, "template_solver.prototxt")
    with open(solver, "w") as f:
        f.write("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return solver


def _train(template: str, key: str, solver: str, rate: float, seed: int, schedule: Schedule,
           data_dir: str, runs_dir: str, title: str) -> Dict:
    """One `caffe train` run from a solver template at base_lr `rate` and random_seed `seed`,
    snapshotting every schedule.snapshot iterations."""
    run_dir = os.path.join(runs_dir, key, f"lr{rate:g}_seed{seed}")
    val_batches = -(-schedule.counts["val"] // TRAIN_BATCH)
    run = prepare_run(template, data_dir, run_dir,
                      {"type": solver, "base_lr": rate, "random_seed": seed,
                       "max_iter": schedule.max_iter, "stepsize": schedule.stepsize,
                       "test_interval": schedule.snapshot, "snapshot": schedule.snapshot})
    _set_test_iter(run.solver, val_batches)   # one test pass = the validation split once
    started = time.monotonic()
    diverged = False
    try:
        train_curve = [list(p) for p in train(run, title.ljust(44)).train]
    except RuntimeError as failure:
        # A rate or an initialisation that blows up is a result, not an error: the layer stops
        # Caffe at the first non-finite logit. Any other failure is an error.
        if "non-finite" not in str(failure):
            raise
        diverged, train_curve = True, [list(p) for p in read_log(run.log).train]
    return {"key": key, "base_lr": rate, "seed": seed, "weights": run.weights,
            "snapshot_prefix": run.weights.rsplit("_iter_", 1)[0],
            "diverged": diverged, "train_seconds": time.monotonic() - started,
            "iterations": run.max_iter,
            "curves": {"train": train_curve,
                       "test": [list(p) for p in read_test_losses(run.log)["total"]]}}


def _set_test_iter(solver_path: str, test_iter: int) -> None:
    """prepare_run sets scalar fields only; test_iter is a repeated field."""
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format
    solver = caffe_pb2.SolverParameter()
    with open(solver_path) as f:
        text_format.Merge(f.read(), solver)
    del solver.test_iter[:]
    solver.test_iter.append(test_iter)
    with open(solver_path, "w") as f:
        f.write(text_format.MessageToString(solver))


def _ground_truth(data_dir: str, split: str):
    images, boxes, classes = detector_data.read_split(data_dir, split)
    return images, boxes, classes, coco_ground_truth(boxes, classes, CANVAS, NUM_CLASSES)


def _val_curve(info: Dict, schedule: Schedule, data_dir: str, val_gt) -> List[List[float]]:
    """[iteration, validation AP] at every snapshot (0 past a divergence)."""
    curve = []
    for iteration in range(schedule.snapshot, schedule.max_iter + 1, schedule.snapshot):
        weights = f"{info['snapshot_prefix']}_iter_{iteration}.caffemodel"
        missing = info["diverged"] or not os.path.exists(weights)
        curve.append([iteration, _score(weights, missing, data_dir, "val", val_gt)["AP"]])
    return curve


def _score(weights: str, diverged: bool, data_dir: str, split: str, ground_truth,
           keep_detections: bool = False) -> Dict:
    """COCO metrics of trained weights on a split (all 0 for a run that diverged); with
    keep_detections, also the confident detections of the first images (for the figure)."""
    images, _, _, gt = ground_truth
    if diverged:
        detections = [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0),
                       "classes": np.zeros(0, np.int64)} for _ in images]
    else:
        detections = detect(deploy_outputs(DEPLOY, weights, images), CANVAS, NUM_CLASSES)
    metrics = evaluate(gt, detections)
    if keep_detections:
        metrics["detections"] = [{name: value[d["scores"] >= DRAW_SCORE].tolist()
                                  for name, value in d.items()}
                                 for d in detections[:FIGURE_IMAGES]]
    return metrics


def _headline(metrics: Dict) -> Dict:
    return {key: metrics[key] for key in METRICS}


def _arm_summary(key: str, runs: List[Dict]) -> Dict:
    """One arm: per seed its numbers and curves; per metric the mean and t-interval over seeds;
    per-class AP per seed; the PR curve at IoU 0.5 averaged over seeds."""
    out = {"label": LOSSES[key]["label"], "prior": LOSSES[key]["prior"],
           "base_lr": runs[0]["base_lr"], "seeds": [],
           "diverged": int(sum(r["diverged"] for r in runs))}
    for r in runs:
        train_losses = [loss for _, loss in r["curves"]["train"]]
        out["seeds"].append({"seed": r["seed"], "diverged": r["diverged"],
                             "train_seconds": r["train_seconds"], "iterations": r["iterations"],
                             "max_train_loss": max(train_losses) if train_losses else None,
                             "val_curve": r["val_curve"], "curves": r["curves"],
                             **_headline(r["test"])})
    for metric in METRICS:
        out[metric] = t_interval([r["test"][metric] for r in runs])
    out["ap_per_class"] = [r["test"]["ap_per_class"] for r in runs]
    out["pr50"] = {"recall": runs[0]["test"]["pr50"]["recall"],
                   "precision": np.mean([r["test"]["pr50"]["precision"] for r in runs],
                                        axis=0).tolist()}
    out["detections"] = runs[0]["test"].get("detections")
    return out
