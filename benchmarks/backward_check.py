"""`make bench`, what backward's check costs: a kernel's backward with the check that the logits
did not change since forward (the pass sums a hash of its inputs' bits again,
kernels.checksum_pairs, softmax_kernels._max_steps; fast.BlockedKernel.backward) against the
same backward without it (check=False), on the same kernel and blobs, in one process, turn
about; medians. PROCESSES fresh processes measure every row, one after the other; a row's
ratio is the median of theirs (the ratio of one process varied by ±1.5 % between processes, by
more than between repeats within one). The layers' backward is the kernel's plus Caffe's fixed
per-call overhead.

    python -m benchmarks.backward_check [--quick]
"""
import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np

from .inputs import IGNORED_FRACTION, POSITIVE_FRACTION
from .softmax import CLASSIFIER
from .softmax import LARGE as SOFTMAX_LARGE
from .timing import median_seconds

TARGET = 1.05       # backward with the check / without, at most
SECONDS, MAX_REPEATS = 1.0, 1001    # of runs per row and kind, for small blobs
PROCESSES = 3
# (row name, layer kind, shape, settings); "large": benchmarks.run.LARGE
CASES = [
    ("FocalLossLayer γ=2", "sigmoid", "large", {"focusing_parameter": 2}),
    ("FocalLossLayer γ=1.5", "sigmoid", "large", {"focusing_parameter": 1.5}),
    ("FocalLossLayer γ=2 indices", "indices", "large", {"focusing_parameter": 2}),
    ("SoftmaxFocalLossLayer γ=2", "softmax", SOFTMAX_LARGE,
     {"focusing_parameter": 2, "ignore_label": 255}),
    ("SoftmaxFocalLossLayer γ=1.5", "softmax", SOFTMAX_LARGE,
     {"focusing_parameter": 1.5, "ignore_label": 255}),
    ("SoftmaxFocalLossLayer γ=2", "softmax", CLASSIFIER,
     {"focusing_parameter": 2, "ignore_label": 255}),
    # Shapes that take the other code paths: (N, C) sigmoid logits without spatial dims (the
    # class cycles along a block), and small maps, where a block holds many whole samples and
    # a blob of 12 MB stays in cache (backward is then arithmetic, not memory, and so is the
    # check).
    ("FocalLossLayer γ=2, no spatial", "sigmoid", (200000, 80), {"focusing_parameter": 2}),
    ("SoftmaxFocalLossLayer γ=2", "softmax", (512, 21, 17, 17),
     {"focusing_parameter": 2, "ignore_label": 255}),
]
QUICK_SHAPES = {"sigmoid": (2, 3, 1000), "indices": (2, 3, 1000), "softmax": (2, 5, 8, 8)}


def blob_shape(kind, shape, quick=False):
    """A case's shape: QUICK_SHAPES' in quick mode; "large" is benchmarks.run.LARGE."""
    from .run import LARGE
    return QUICK_SHAPES[kind] if quick else LARGE if shape == "large" else shape


def kernel_and_inputs(kind, shape, settings, seed=0):
    """A forward-run kernel and its (logits, labels, out): logits ~ N(0, 3²); sigmoid targets
    or class indices about POSITIVE_FRACTION positive; softmax classes, IGNORED_FRACTION
    ignored."""
    from focal_loss_layer.fast import FocalLossKernel
    from focal_loss_layer.params import parse_param_str, parse_softmax_param_str
    from focal_loss_layer.softmax_fast import SoftmaxFocalLossKernel
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=shape).astype(np.float32)
    positions = shape[:1] + shape[2:]
    if kind == "sigmoid":
        labels = (rng.random(shape, dtype=np.float32) < POSITIVE_FRACTION).astype(np.float32)
        kernel = FocalLossKernel(parse_param_str(json.dumps(settings)), shape, shape)
    elif kind == "indices":
        positive = rng.random(positions) < POSITIVE_FRACTION * shape[1]
        labels = np.where(positive, rng.integers(1, shape[1] + 1, positions), 0).astype(np.float32)
        kernel = FocalLossKernel(parse_param_str(json.dumps(settings)), shape, positions)
    else:
        labels = rng.integers(0, shape[1], positions).astype(np.float32)
        labels[rng.random(positions) < IGNORED_FRACTION] = settings["ignore_label"]
        kernel = SoftmaxFocalLossKernel(parse_softmax_param_str(json.dumps(settings)), shape,
                                        positions)
    kernel.forward(logits, labels)
    return kernel, logits, labels, np.empty_like(logits)


def measure_rows(quick=False):
    """Per case, (median s without the check, median s with it, repeats), in this process."""
    least = 3 if quick else 41
    rows = []
    for _, kind, shape, settings in CASES:
        kernel, logits, labels, grad = kernel_and_inputs(kind, blob_shape(kind, shape, quick),
                                                         settings)
        for check in (True, False):     # (the first call of each may load its code)
            kernel.backward(logits, labels, 1.0, grad, check=check)
        # At least `least` runs each, and about a second of them: small blobs' runs are short,
        # and their ratio varied by ±2 % between processes with 41.
        start = time.perf_counter()
        kernel.backward(logits, labels, 1.0, grad)
        repeats = least if quick else int(min(MAX_REPEATS, max(
            least, SECONDS / (time.perf_counter() - start))))
        times = median_seconds({
            label: partial(kernel.backward, logits, labels, 1.0, grad, check=check)
            for label, check in (("without", False), ("with", True))}, repeats)
        rows.append((times["without"], times["with"], repeats))
    return rows


def lines(quick=False):
    """The table: per case, backward without and with the check, and their ratio, from the
    process whose ratio is the median of PROCESSES fresh ones (one in quick mode), each
    measuring every case; and the range of their ratios."""
    processes = 1 if quick else PROCESSES
    spawn = multiprocessing.get_context("spawn")
    runs = []
    for _ in range(processes):
        with ProcessPoolExecutor(1, mp_context=spawn) as fresh:
            runs.append(fresh.submit(measure_rows, quick).result())
    out = ["backward's check that the logits did not change since forward (the kernel's backward "
           f"alone; per process, medians of {min(row[2] for run in runs for row in run)}+ runs, "
           f"about {SECONDS:g} s of each, turn about; of {processes} fresh "
           f"process{'es' if processes > 1 else ''}, the one with the median ratio, and the "
           "range of their ratios)",
           f"| {'layer':<30} | {'shape':<18} | {'bwd ms':>8} | {'+ check ms':>10} | "
           f"{'ratio':>6} | {'processes':>11} |",
           f"|{'-' * 32}|{'-' * 20}|{'-' * 10}|{'-' * 12}|{'-' * 8}|{'-' * 13}|"]
    worst = 0.0
    for index, (name, kind, shape, _) in enumerate(CASES):
        shape = blob_shape(kind, shape, quick)
        ratios = [run[index][1] / run[index][0] for run in runs]
        # the times of the process whose ratio is the median (the row then reads consistently)
        middle = int(np.argsort(ratios)[len(ratios) // 2])
        without, with_check, _ = runs[middle][index]
        ratio = ratios[middle]
        worst = max(worst, ratio)
        out.append(f"| {name:<30} | {str(shape):<18} | {without * 1e3:8.2f} | "
                   f"{with_check * 1e3:10.2f} | {ratio:6.3f} | "
                   f"{min(ratios):.3f}–{max(ratios):.3f} |")
    out.append(f"target backward's check: with / without {worst:.3f} (worst row's median) ≤ "
               f"{TARGET:g}: {'met' if worst <= TARGET else 'NOT MET'}")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    print("\n".join(lines(parser.parse_args().quick)))
