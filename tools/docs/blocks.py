"""The generated blocks of README.md and docs/*.md, by region name (see markers.py).

Every number in a block comes from a file the repository commits or from running code in it:
results/results.json (written by `make example`), results/study.json (by `make study`),
results/study_sweep.json (by `make sweep`), results/bench.txt (by `make bench`), the
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

from examples.study.report import interval

from .api import api_reference
from .bench_output import BenchOutput, read_bench_output
from .params_table import params_table
from .study_findings import findings, headline_sentence

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


def digits_table() -> str:
    return _examples_table({"digits": results()["examples"]["digits"]})


def digit_grid_table() -> str:
    return _examples_table({"digit_grid": results()["examples"]["digit_grid"]})


@functools.lru_cache(maxsize=None)
def _committed(name: str) -> Dict:
    with open(os.path.join(REPO, "results", name), encoding="utf-8") as f:
        return json.load(f)


def study() -> Dict:
    """results/study.json, written by `make study`."""
    return _committed("study.json")


def sweep() -> Dict:
    """results/study_sweep.json, written by `make sweep`."""
    return _committed("study_sweep.json")


def study_headline() -> str:
    """The README's table: per arm AP and AP50 over the seeds, per comparison the paired per-seed
    AP difference, then the one-sentence finding."""
    data = study()
    seeds = len(data["seeds"])
    lines = [f"| COCO AP on the test split, {seeds} seeds, "
             f"{data['protocol']['max_iter']:,} SGD iterations: mean [95% CI] | base_lr | AP | "
             "AP50 |",
             "|---|---|---|---|"]
    for net in data["nets"].values():
        short = net["title"].split(" on ")[0]
        lines += [f"| {short}: {arm['label']} | {arm['base_lr']:g} | {interval(arm['AP'])} | "
                  f"{interval(arm['AP50'])} |" for arm in net["arms"].values()]
    for net in data["nets"].values():
        lines += [f"| {c['name']}, paired per seed | | {interval(c['paired']['AP'], True)} | "
                  f"{interval(c['paired']['AP50'], True)} |" for c in net["comparisons"].values()]
    return "\n".join(lines) + "\n\n" + headline_sentence(data)


def study_tables() -> str:
    from examples.study.report import study_tables as tables
    return tables(study())


def study_findings() -> str:
    return findings(study(), sweep())


def study_val_curves() -> str:
    """Validation AP against iteration, the mean over each arm's seeds (every seed's curve is in
    study.json, nets.<net>.arms.<arm>.seeds[i].val_curve)."""
    out = []
    for net in study()["nets"].values():
        arms = net["arms"]
        iterations = [it for it, _ in next(iter(arms.values()))["seeds"][0]["val_curve"]]
        lines = [f"| {net['title'].split(' on ')[0]}: validation AP, mean over seeds, at "
                 "iteration | " + " | ".join(f"{it:,}" for it in iterations)
                 + " | flat, of the runs that trained |",
                 "|---|" + "---|" * (len(iterations) + 1)]
        for arm in arms.values():
            curves = [dict(seed["val_curve"]) for seed in arm["seeds"]]
            means = [sum(c[it] for c in curves) / len(curves) for it in iterations]
            lines.append(f"| {arm['label']} | " + " | ".join(f"{m:.3f}" for m in means)
                         + f" | {arm['flat']}/{len(arm['seeds']) - arm['failed']} |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def study_sweep() -> str:
    from examples.study.report import sweep_tables
    return sweep_tables(sweep())


def study_no_prior() -> str:
    checks = study()["no_prior"]
    lines = ["| class bias 0 (no prior), first iterations of the protocol | base_lr | iterations "
             "| diverged | training loss, first → last logged |", "|---|---|---|---|---|"]
    for check in checks.values():
        curve = check["train_curve"]
        losses = f"{curve[0][1]:.4g} → {curve[-1][1]:.4g}" if curve else "none logged"
        lines.append(f"| {check['label']} | {check['base_lr']:g} | {check['iterations']} | "
                     + (f"yes, at iteration {check['diverged_at']}" if check["diverged"]
                        else "no") + f" | {losses} |")
    return "\n".join(lines)


def study_time() -> str:
    data, swept = study(), sweep()
    return (f"The committed `make study` took {_minutes(data['wall_time_seconds'])} after set-up "
            f"({data['jobs']} `caffe train` processes at a time), the committed `make sweep` "
            f"{_minutes(swept['wall_time_seconds'])}; both on a 2-core AMD EPYC machine, "
            f"from commits {data['code']['commit'][:7]} and {swept['code']['commit'][:7]} in "
            "clean clones.")


def demo_tables() -> str:
    from examples.study.report import demo_table
    return "\n\n".join(demo_table(results()[name]) for name in ("detector", "ssd"))


@functools.lru_cache(maxsize=None)
def detector_anchor_stats() -> str:
    """`python -m examples.detector.anchor_stats`, run here (seeded scenes: the same output each run)."""
    done = subprocess.run([sys.executable, "-m", "examples.detector.anchor_stats"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"examples.detector.anchor_stats failed:\n{done.stderr[-2000:]}")
    return "```\n$ python -m examples.detector.anchor_stats\n" + done.stdout.rstrip("\n") + "\n```"


def example_time() -> str:
    total = results()["wall_time_seconds"]
    return (f"The last full `make example` (committed in `results/`) took {_minutes(total)} "
            "after set-up.")


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
    "study-headline": study_headline,
    "study-tables": study_tables,
    "study-findings": study_findings,
    "study-val-curves": study_val_curves,
    "study-sweep": study_sweep,
    "study-no-prior": study_no_prior,
    "study-time": study_time,
    "demo-tables": demo_tables,
    "detector-anchor-stats": detector_anchor_stats,
    "example-time": example_time,
    "api": api_reference,
}
