"""This checkout's compiled passes against another commit's, on the same blobs: each kernel's
forward and backward (with the check) alone, medians of repeats turn about, in fresh processes
that alternate between the two versions (a process runs a kernel at one of two speeds on this
machine, see docs/performance.md; alternating puts both versions through both). Prints per
shape and version the median over processes, and this / that.

    python -m benchmarks.versions REVISION [--rounds 4]

The other version's package comes from `git archive REVISION focal_loss_layer`, unpacked in a
temporary folder with its own numba cache; the benchmark code and blobs are this checkout's.
"""
import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from functools import partial
from io import BytesIO
from pathlib import Path

import numpy as np

from . import backward_check
from .backward_check import blob_shape, kernel_and_inputs
from .timing import median_seconds

ROOT = Path(__file__).resolve().parent.parent
# benchmarks.backward_check's γ = 2 rows with spatial dims or of many classes
CASES = [case for case in backward_check.CASES
         if case[0] in ("FocalLossLayer γ=2", "SoftmaxFocalLossLayer γ=2")]
REPEATS = 41


def measure():
    """Per case, (median forward s, median backward s) of the package this process imports."""
    rows = []
    for _, kind, shape, settings in CASES:
        kernel, logits, labels, grad = kernel_and_inputs(kind, blob_shape(kind, shape), settings)
        kernel.backward(logits, labels, 1.0, grad)
        times = median_seconds({"forward": partial(kernel.forward, logits, labels),
                                "backward": partial(kernel.backward, logits, labels, 1.0, grad)},
                               REPEATS)
        rows.append((times["forward"], times["backward"]))
    return rows


def _unpack(revision, folder):
    """REVISION's focal_loss_layer package into folder (git archive)."""
    archive = subprocess.run(["git", "archive", revision, "focal_loss_layer"], cwd=ROOT,
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")


def _run(package_parent, cache):
    """measure() in a fresh process importing focal_loss_layer from package_parent."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_parent, str(ROOT)]),
               NUMBA_CACHE_DIR=cache)
    done = subprocess.run([sys.executable, "-c", "import json, benchmarks.versions as v; "
                           "print(json.dumps(v.measure()))"], cwd=tempfile.gettempdir(),
                          env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def lines(revision, rounds):
    with tempfile.TemporaryDirectory() as other:
        _unpack(revision, other)
        versions = {"this": str(ROOT), revision: other}
        caches = {name: tempfile.mkdtemp() for name in versions}
        runs = {name: [] for name in versions}
        for round_ in range(rounds):
            order = list(versions) if round_ % 2 == 0 else list(versions)[::-1]
            for name in order:
                runs[name].append(_run(versions[name], caches[name]))
    out = [f"this checkout against {revision}: each kernel alone, medians of {REPEATS} runs per "
           f"process, medians over {rounds} fresh processes per version, alternating",
           f"| {'layer':<26} | {'shape':<18} | {'fwd ms':>7} | {'bwd ms':>7} | "
           f"{'that fwd':>8} | {'that bwd':>8} | {'fwd ×':>6} | {'bwd ×':>6} |",
           f"|{'-' * 28}|{'-' * 20}|{'-' * 9}|{'-' * 9}|{'-' * 10}|{'-' * 10}|{'-' * 8}|"
           f"{'-' * 8}|"]
    for index, (name, kind, shape, _) in enumerate(CASES):
        shape = blob_shape(kind, shape)
        this = np.median([run[index] for run in runs["this"]], axis=0) * 1e3
        that = np.median([run[index] for run in runs[revision]], axis=0) * 1e3
        out.append(f"| {name:<26} | {str(shape):<18} | {this[0]:7.2f} | {this[1]:7.2f} | "
                   f"{that[0]:8.2f} | {that[1]:8.2f} | {this[0] / that[0]:6.3f} | "
                   f"{this[1] / that[1]:6.3f} |")
    for index, (name, kind, shape, _) in enumerate(CASES):
        shape = blob_shape(kind, shape)
        spread = {version: ", ".join(f"{run[index][1] * 1e3:.2f}" for run in runs[version])
                  for version in versions}
        out.append(f"backward ms per process, {name} {shape}: this {spread['this']}; "
                   f"{revision} {spread[revision]}")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("revision")
    parser.add_argument("--rounds", type=int, default=4)
    arguments = parser.parse_args()
    print("\n".join(lines(arguments.revision, arguments.rounds)))
