"""The generated blocks of README.md and docs/*.md, by region name (see markers.py).

Every number in a block comes from a file the repository commits or from running code in it:
results/results.json (written by `make example`), results/bench.txt (by `make bench`), the
params dataclasses, the docstrings, and the quick start's smoke test, run here.
"""
import functools
import json
import os
import subprocess
import sys
from typing import Callable, Dict

from .api import api_reference
from .bench_output import BenchOutput, read_bench_output
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
        f"- **Small**: at most {max(b.memory):.4f}× the logits blob of extra memory per pass "
        "(Caffe's SCE keeps 1×).",
        f"- **Compiled once**: the first use on a machine compiles for up to {first_use:.0f} s per γ "
        f"path; every later process loads the cache in {cached:.2f} s or less.",
        f"- Measured by `make bench` in one process, against Caffe's own layers on the same blobs "
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


def _example_report():
    """The examples' own table writers (the tables `make example` prints)."""
    from examples.detector.report import table as detector_table
    from examples.report import table as examples_table
    return examples_table, detector_table


def digits_table() -> str:
    examples_table, _ = _example_report()
    return examples_table({"examples": {"digits": results()["examples"]["digits"]}})


def digit_grid_table() -> str:
    examples_table, _ = _example_report()
    return examples_table({"examples": {"digit_grid": results()["examples"]["digit_grid"]}})


def detector_table() -> str:
    _, table = _example_report()
    return table(results()["detector"])


def example_time() -> str:
    total = results()["wall_time_seconds"]
    detector = results()["detector"]["wall_time_seconds"]
    return (f"The last full `make example` (committed in `results/`) took {_minutes(total)} "
            f"after set-up, {_minutes(detector)} of it the detector.")


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {round(seconds % 60)} s"


BLOCKS: Dict[str, Callable[[], str]] = {
    "smoke-test": smoke_test,
    "param-table": params_table,
    "speed-summary": speed_summary,
    "bench-output": bench_output,
    "digits-table": digits_table,
    "digit-grid-table": digit_grid_table,
    "detector-table": detector_table,
    "example-time": example_time,
    "api": api_reference,
}
