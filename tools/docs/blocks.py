"""The generated blocks of README.md and docs/*.md, by region name (see markers.py).

Every number in a block comes from a file the repository commits or from running code in it:
results/results.json (written by `make example`), results/detector_{lr,gamma}_sweep.json (by
`python -m examples.detector --lr-sweep / --gamma-sweep`), results/bench.txt (by `make bench`), the
params dataclasses, the docstrings, and commands run here: the quick start's smoke test, the
balances tool on the digits example's training labels (written to a temporary folder), and the
detector's anchor statistics.
"""
import functools
import json
import os
import subprocess
import sys
import tempfile
from typing import Callable, Dict

from .api import api_reference
from .bench_output import BenchOutput, read_bench_output
from .detector_findings import findings, gamma_sweep_findings, lr_sweep_findings
from .params_table import params_table

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(REPO, "results", "results.json")
BENCH = os.path.join(REPO, "results", "bench.txt")

# The quick start's smoke test, run from the repository root after `make setup`.
SMOKE_TEST = """\
import caffe, numpy as np
net = caffe.Net("prototxt/quickstart.prototxt", caffe.TEST)
print(net.forward(score=np.float32([[2, -1, 0], [0, 0, -3]]), label=np.float32([1, 0]))["loss"])
"""


@functools.lru_cache(maxsize=None)
def results() -> Dict:
    with open(RESULTS, encoding="utf-8") as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def bench() -> BenchOutput:
    with open(BENCH, encoding="utf-8") as f:
        return read_bench_output(f.read())


@functools.lru_cache(maxsize=None)
def smoke_test() -> str:
    env = dict(os.environ, GLOG_minloglevel="2")
    done = subprocess.run([sys.executable, "-c", SMOKE_TEST], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"the quick start's smoke test failed:\n{done.stderr[-2000:]}")
    return ("```python\n" + SMOKE_TEST + "```\n\nprints (run by `make docs`, which writes it here):\n\n"
            "```\n" + done.stdout.strip() + "\n```")


# What docs/class_balances.md shows: the balances tool on the labels `make example` writes for
# digits, for FocalLossLayer (its one-hot targets) and for SoftmaxFocalLossLayer (its digits).
BALANCES_SIGMOID = ["results/data/digits/train.txt", "--dataset", "target"]
BALANCES_SOFTMAX = ["results/data/digits/train.txt", "--dataset", "digit", "--layer", "softmax"]


@functools.lru_cache(maxsize=None)
def balances_output() -> str:
    """The balances tool's output on the digits example's training labels, written by the
    example's own (seeded) data writer into a temporary folder laid out as the repository is after
    `make example`; which digits the rare class ids are; whether the softmax count agrees."""
    from examples.digits.data import RARE_CLASSES, RARE_KEPT_FRACTION
    from examples.digits.run import write_data
    with tempfile.TemporaryDirectory() as folder:
        write_data(os.path.join(folder, "results", "data", "digits"))
        sigmoid, softmax = (_run_balances(args, folder) for args in (BALANCES_SIGMOID, BALANCES_SOFTMAX))
    fragment = {name: out.rstrip("\n").splitlines()[-1] for name, out in
                (("sigmoid", sigmoid), ("softmax", softmax))}
    same = ("prints the same weights" if fragment["sigmoid"] == fragment["softmax"]
            else f"prints `{fragment['softmax']}`")
    rare_ids = [digit + 1 for digit in RARE_CLASSES]   # FocalLossLayer's class id = digit + 1
    return ("```sh\n.venv/bin/python -m focal_loss_layer.balances " + " ".join(BALANCES_SIGMOID)
            + "\n```\n```\n" + sigmoid.rstrip("\n") + "\n```\n\n"
            f"The rare class ids {_and(rare_ids)} are the digits {_and(RARE_CLASSES)} that the example "
            f"keeps at {RARE_KEPT_FRACTION:.0%} (class id = digit + 1). `digit` in that file holds the "
            "digits themselves, where 0 is a real class, not background: `" + " ".join(BALANCES_SOFTMAX[1:])
            + f"` counts it for a SoftmaxFocalLossLayer (class ids 0..9) and {same}.")


def _run_balances(args, folder: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-m", "focal_loss_layer.balances", *args], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"the balances tool failed on {args}:\n{done.stderr[-2000:]}")
    return done.stdout


def _and(items) -> str:
    """'4, 6 and 9'."""
    words = [str(item) for item in items]
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def bench_output() -> str:
    return "```\n" + bench().text.rstrip("\n") + "\n```"


def speed_summary() -> str:
    b = bench()
    sigmoid = (b.target("large gamma=2"), b.target("large gamma=1.5"), b.target("small gamma=2"))
    softmax = (b.target("softmax large gamma=2"), b.target("softmax small gamma=2"))
    first_use = max(v for k, v in b.jit_first_use.items() if k != "import")
    cached = max(b.jit_cached.values())
    return "\n".join([
        f"- **Speed**: forward+backward on a RetinaNet-sized blob (16 M logits) takes "
        f"{_ratio(sigmoid[0])} the time of Caffe's C++ `SigmoidCrossEntropyLoss` at γ = 2 "
        f"({_ratio(sigmoid[1])} at γ = 1.5), {_ratio(sigmoid[2])} on a tiny (64, 20) blob; "
        f"`SoftmaxFocalLossLayer` {_ratio(softmax[0])} `SoftmaxWithLoss` on (8, 21, 256, 256), "
        f"{_ratio(softmax[1])} on (64, 21).",
        f"- **Memory**: each layer keeps its gradient from forward to backward, one float32 "
        f"buffer the size of the logits (measured {max(b.kept):.3f}× the logits blob; Caffe's "
        f"SCE and SWL keep as much), and takes at most {max(b.memory):.4f}× more during a pass.",
        f"- **Compiled once**: the first use on a machine compiles for up to {first_use:.0f} s per γ "
        f"path; every later process loads the cache in {cached:.2f} s or less.",
        f"- Measured by `make bench` in one process, in CPU mode, against Caffe's own layers on the "
        f"same blobs "
        f"([performance](docs/performance.md)); {b.machine.removeprefix('machine: ')}; load "
        f"average {_load(b.load)} (other jobs on the machine raise these layers' ratios more than "
        "Caffe's: they use both cores).",
    ])


def _load(load) -> str:
    """'0.3' or '3.3 at the start, 5.1 at the end' (1-minute load averages)."""
    if not load:
        return "not recorded"
    if len(load) == 1 or load[0] == load[-1]:
        return f"{load[0]:g}"
    return f"{load[0]:g} at the start, {load[-1]:g} at the end"


def _ratio(target) -> str:
    """0.22×, or 0.45× (target 0.3×: not met) when this run missed the benchmark's target."""
    return f"{target.ratio:.2f}×" + ("" if target.met else f" (target {target.target:g}×: not met)")


def _examples_table(examples: Dict) -> str:
    """The digits / digit_grid table `make example` prints (examples/common/report.py)."""
    from examples.common.report import table
    return table({"examples": examples})


def _detector_report():
    """The detector example's own table writers (examples/detector/report.py)."""
    from examples.detector import report
    return report


def digits_table() -> str:
    return _examples_table({"digits": results()["examples"]["digits"]})


def digit_grid_table() -> str:
    return _examples_table({"digit_grid": results()["examples"]["digit_grid"]})


def detector_table() -> str:
    return _detector_report().table(results()["detector"])


def detector_headline() -> str:
    """The README's detector table: each arm's AP and AP50 over its seeds and the paired per-seed
    differences (mean [95% t-interval]), then which intervals exclude 0."""
    report, det = _detector_report(), results()["detector"]
    arms, pairs = det["arms"], det["paired"]
    seeds = len(next(iter(arms.values()))["seeds"])
    lines = [f"| RetinaNet-lite, COCO AP on the test split, {seeds} seeds: mean [95% CI] | AP | AP50 |",
             "|---|---|---|"]
    lines += [f"| {arm['label']} | {report.interval(arm['AP'])} | {report.interval(arm['AP50'])} |"
              for arm in arms.values()]
    lines += [f"| {name}, paired per seed | {report.interval(pair['AP'], signed=True)} | "
              f"{report.interval(pair['AP50'], signed=True)} |" for name, pair in pairs.items()]
    return "\n".join(lines) + "\n\n" + _verdict(pairs)


def _verdict(pairs: Dict) -> str:
    """One sentence: which paired AP differences' 95 % intervals exclude 0 (and on which side),
    and which include it."""
    sides: Dict[str, list] = {"above 0": [], "below 0": [], "includes 0": []}
    for name, pair in pairs.items():
        ap = pair["AP"]
        if ap["low"] is None:
            continue
        side = "above 0" if ap["low"] > 0 else "below 0" if ap["high"] < 0 else "includes 0"
        sides[side].append(name)
    excluded = [f"{n} ({side})" for side in ("above 0", "below 0") for n in sides[side]]
    return ("Paired AP differences whose 95 % interval excludes 0: "
            + (", ".join(excluded) or "none") + "; whose interval includes 0: "
            + (", ".join(sides["includes 0"]) or "none") + ".")


def detector_findings() -> str:
    return findings(results()["detector"])


def detector_val_curve() -> str:
    """Validation AP against iteration, the mean over each arm's seeds (every seed's curve is in
    results.json, arms.<arm>.seeds[i].val_curve)."""
    arms = results()["detector"]["arms"]
    iterations = [it for it, _ in next(iter(arms.values()))["seeds"][0]["val_curve"]]
    lines = ["| validation AP, mean over seeds, at iteration | " + " | ".join(map(str, iterations)) + " |",
             "|---|" + "---|" * len(iterations)]
    for arm in arms.values():
        curves = [dict(seed["val_curve"]) for seed in arm["seeds"] if not seed["diverged"]]
        means = [sum(c[it] for c in curves) / len(curves) for it in iterations]
        lines.append(f"| {arm['label']} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    return "\n".join(lines)


def _sweep_file(name: str) -> Dict:
    """A committed sweep's file (python -m examples.detector --lr-sweep / --gamma-sweep)."""
    with open(os.path.join(REPO, "results", f"detector_{name}.json"), encoding="utf-8") as f:
        return json.load(f)


def _sweep(name: str) -> Dict:
    return _sweep_file(name)[name]


def detector_lr_sweep() -> str:
    sweep = _sweep("lr_sweep")
    return _detector_report().lr_sweep_table(sweep) + "\n\n" + lr_sweep_findings(sweep)


def detector_gamma_sweep() -> str:
    file = _sweep_file("gamma_sweep")
    return (_detector_report().gamma_table(file["gamma_sweep"]) + "\n\n"
            + gamma_sweep_findings(file["gamma_sweep"], results()["detector"], file["wall_time_seconds"]))


@functools.lru_cache(maxsize=None)
def detector_anchor_stats() -> str:
    """`python -m examples.detector.anchor_stats`, run here (seeded scenes: the same output each run)."""
    done = subprocess.run([sys.executable, "-m", "examples.detector.anchor_stats"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"examples.detector.anchor_stats failed:\n{done.stderr[-2000:]}")
    return "```\n$ python -m examples.detector.anchor_stats\n" + done.stdout.rstrip("\n") + "\n```"


def ssd_table() -> str:
    from examples.ssd.report import table
    return table(results()["ssd"])


def ssd_lr_sweep() -> str:
    """The SSD-lite rate sweep (results/ssd_lr_sweep.json, from `python -m examples.ssd
    --lr-sweep`): validation AP per arm and rate, the picks in bold."""
    from examples.ssd.prototxt import ARMS
    with open(os.path.join(REPO, "results", "ssd_lr_sweep.json"), encoding="utf-8") as f:
        sweep = json.load(f)
    rates = sorted({p["base_lr"] for points in sweep["points"].values() for p in points})
    lines = ["| validation AP at base_lr | " + " | ".join(f"{r:g}" for r in rates) + " |",
             "|---|" + "---|" * len(rates)]
    for key, points in sweep["points"].items():
        ap = {p["base_lr"]: p["AP"] for p in points}
        cells = [(f"**{ap[r]:.3f}**" if r == sweep["picked"][key] else f"{ap[r]:.3f}")
                 if r in ap else "—" for r in rates]
        lines.append(f"| {ARMS[key]['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def example_time() -> str:
    total = results()["wall_time_seconds"]
    detector = results()["detector"]["wall_time_seconds"]
    return (f"The last full `make example` (committed in `results/`) took {_minutes(total)} "
            f"after set-up, {_minutes(detector)} of it the detector.")


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {round(seconds % 60)} s"


BLOCKS: Dict[str, Callable[[], str]] = {
    "smoke-test": smoke_test,
    "balances-output": balances_output,
    "param-table": params_table,
    "speed-summary": speed_summary,
    "bench-output": bench_output,
    "digits-table": digits_table,
    "digit-grid-table": digit_grid_table,
    "detector-table": detector_table,
    "detector-headline": detector_headline,
    "detector-findings": detector_findings,
    "detector-anchor-stats": detector_anchor_stats,
    "detector-val-curve": detector_val_curve,
    "detector-lr-sweep": detector_lr_sweep,
    "detector-gamma-sweep": detector_gamma_sweep,
    "example-time": example_time,
    "ssd-table": ssd_table,
    "ssd-lr-sweep": ssd_lr_sweep,
    "api": api_reference,
}
