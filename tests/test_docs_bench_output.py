"""Reading the saved benchmark output (tools/docs/bench_output.py): on the committed run, and on
text where a line the docs need is missing."""
import pytest

from tools.docs.bench_output import BenchOutputError, read_bench_output
from tools.docs.blocks import bench

SAMPLE = """machine: 2 cores (nproc), CPU X; Python 3.11.7, numpy 2.4.6, numba 0.68.1
load average (1/5/15 min): 1.61 1.76 1.92
target large gamma=2: ours/SCE 0.22 ≤ 0.3: met
target small gamma=2: ours/SCE 2.93 ≤ 2.5: NOT MET
peak extra memory at (2, 80, 100000) ...
  kept    : tracemalloc 1.0001× (the gradient buffer, made in reshape); target ≤ 1.05×: met
  forward : tracemalloc 0.0055×, VmHWM 0.0050×; target ≤ 0.05×: met
  backward: tracemalloc 0.0001×, VmHWM 0.0070×; target ≤ 0.05×: met
JIT: first use on a machine (empty numba cache): import 0.17 s, gamma 2 6.06 s, gamma 1.5 7.19 s
     every later process (cache loaded):       import 0.19 s, gamma 2 0.20 s, gamma 1.5 0.01 s
target softmax large gamma=2: ours/SWL 0.35 ≤ 1: met
  kept    : tracemalloc 1.0000× (the gradient buffer, made in reshape); target ≤ 1.05×: met
  forward : tracemalloc 0.0038×, VmHWM 0.0072×; target ≤ 0.1×: met
  backward: tracemalloc 0.0001×, VmHWM 0.0003×; target ≤ 0.1×: met
load average (1/5/15 min): 2.45 1.70 1.90
"""


def test_sample_is_read():
    out = read_bench_output(SAMPLE)
    assert out.machine.startswith("machine: 2 cores")
    assert out.target("large gamma=2").ratio == 0.22 and out.target("large gamma=2").met
    small = out.target("small gamma=2")
    assert (small.ratio, small.target, small.met, small.reference) == (2.93, 2.5, False, "SCE")
    assert out.target("softmax large gamma=2").reference == "SWL"
    assert out.memory == [0.0070, 0.0072]
    assert out.kept == [1.0001, 1.0]
    assert out.jit_first_use == {"import": 0.17, "gamma 2": 6.06, "gamma 1.5": 7.19}
    assert out.jit_cached["gamma 1.5"] == 0.01
    assert out.load == [1.61, 2.45]


def test_the_committed_run_has_every_figure_the_docs_quote():
    out = bench()
    for row in ("large gamma=2", "large gamma=1.5", "small gamma=2",
                "softmax large gamma=2", "softmax small gamma=2"):
        assert out.target(row).ratio > 0
    assert len(out.memory) == 2 and len(out.kept) == 2


@pytest.mark.parametrize("drop, message", [
    ("machine:", "machine"),
    ("JIT:", "JIT"),
    ("target", "no 'target"),
    ("  kept", "no 'target ...', no memory or no 'kept' lines"),
])
def test_missing_lines_are_named(drop, message):
    text = "\n".join(line for line in SAMPLE.splitlines() if not line.startswith(drop))
    with pytest.raises(BenchOutputError, match=message):
        read_bench_output(text)


def test_an_unknown_row_is_named():
    with pytest.raises(BenchOutputError, match="no 'target huge gamma=9"):
        read_bench_output(SAMPLE).target("huge gamma=9")
