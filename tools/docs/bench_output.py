"""The figures the docs quote from one saved `make bench` run (results/bench.txt).

The benchmark prints its verdicts as lines such as

    target large gamma=2: ours/SCE 0.22 ≤ 0.3: met
    target softmax small gamma=2: ours/SWL 1.14 ≤ 3: met
      kept    : tracemalloc 1.0000× (the gradient buffer, made in reshape); target ≤ 1.05×: met
      forward : tracemalloc 0.0055×, VmHWM 0.0050×; target ≤ 0.05×: met
    JIT: first use on a machine (empty numba cache): import 0.17 s, gamma 2 6.06 s, gamma 1.5 7.19 s

and this module reads them back. A line it cannot find raises BenchOutputError naming it, so a
change of the benchmark's wording shows up in `make docs`, not as a silently missing figure.
"""
import re
from dataclasses import dataclass
from typing import Dict, List

_TARGET = re.compile(r"^target (?P<row>.+?): ours/(?P<reference>\w+) (?P<ratio>[\d.]+) ≤ (?P<target>[\d.]+): "
                     r"(?P<verdict>met|NOT MET)$")
_KEPT = re.compile(r"^\s+kept\s*: tracemalloc (?P<kept>[\d.]+)×")
_MEMORY = re.compile(r"^\s+(forward|backward)\s*: tracemalloc (?P<traced>[\d.]+)×, VmHWM (?P<rss>[\d.]+)×")
_JIT = re.compile(r"^\s*(?:JIT: first use on a machine|every later process)[^:]*: (?P<times>.+)$")
_LOAD = re.compile(r"^load average \(1/5/15 min\): (?P<one>[\d.]+) ")
_TIME = re.compile(r"(?P<what>[\w .=]+?) (?P<seconds>[\d.]+) s")


class BenchOutputError(ValueError):
    """The saved benchmark output lacks a line the docs need."""


@dataclass(frozen=True)
class Target:
    ratio: float       # ours / the C++ reference layer's time, in the same process and run
    target: float
    met: bool
    reference: str     # SCE or SWL


@dataclass(frozen=True)
class BenchOutput:
    text: str
    machine: str                      # the first line: cores, CPU, versions
    targets: Dict[str, Target]        # "large gamma=2", "softmax small gamma=2", ...
    memory: List[float]               # worst of tracemalloc and VmHWM per memory section, × logits
    kept: List[float]                 # kept between passes (the gradient) per section, × logits
    jit_first_use: Dict[str, float]   # seconds per compiled path, empty numba cache
    jit_cached: Dict[str, float]      # seconds per path in a later process
    load: List[float]                 # 1-minute load average at the start and at the end

    def target(self, row: str) -> Target:
        if row not in self.targets:
            raise BenchOutputError(f"no 'target {row}: ...' line in the benchmark output; "
                                   f"it has {sorted(self.targets)}")
        return self.targets[row]


def read_bench_output(text: str) -> BenchOutput:
    lines = text.splitlines()
    if not lines or not lines[0].startswith("machine:"):
        raise BenchOutputError("the benchmark output does not start with its 'machine: ...' line")
    targets = {}
    memory: List[float] = []
    kept: List[float] = []
    jit: List[Dict[str, float]] = []
    load: List[float] = []
    for line in lines:
        match = _LOAD.match(line)
        if match:
            load.append(float(match["one"]))
        match = _TARGET.match(line)
        if match:
            targets[match["row"]] = Target(float(match["ratio"]), float(match["target"]),
                                           match["verdict"] == "met", match["reference"])
        match = _KEPT.match(line)
        if match:
            kept.append(float(match["kept"]))
        match = _MEMORY.match(line)
        if match:
            worst = max(float(match["traced"]), float(match["rss"]))
            if line.lstrip().startswith("forward"):
                memory.append(worst)
            else:
                memory[-1] = max(memory[-1], worst)
        match = _JIT.match(line)
        if match:
            jit.append({m["what"].strip(): float(m["seconds"]) for m in _TIME.finditer(match["times"])})
    if not targets or not memory or not kept:
        raise BenchOutputError("the benchmark output has no 'target ...', no memory or no "
                               "'kept' lines")
    if len(jit) != 2:
        raise BenchOutputError("the benchmark output needs both 'JIT:' lines (first use, cached); "
                               "was it a --quick run?")
    return BenchOutput(text, lines[0], targets, memory, kept, jit[0], jit[1], load)
