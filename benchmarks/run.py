"""`make bench`: FocalLossLayer against Caffe's C++ SigmoidCrossEntropyLoss, in one process and one
run, and the context around it. Prints tables; asserts nothing.

    python -m benchmarks.run            # the full benchmark (about 3 minutes on 2 cores)
    python -m benchmarks.run --quick    # tiny sizes, to check that the code runs

1. A large blob, RetinaNet-sized: (2, 80, 100000) = 16 M logits. Each loss layer is timed alone
   (net._forward(k, k) / net._backward(k, k)) on the same bottoms, in the same net, turn about;
   medians. Ratios ours / SCE are taken within this one run.
2. A small blob, (64, 20), where per-call overhead dominates.
3. Context: the numpy core over the whole blob (the layer before its fast path) and the naive
   per-element loop (timed on a slice, extrapolated per logit).
4. Peak extra memory, JIT compile time, and `caffe time` on an example head net.
5. SoftmaxFocalLossLayer against Caffe's C++ SoftmaxWithLoss (benchmarks.softmax): a
   segmentation-sized blob (8, 21, 256, 256), a small one (64, 21), its own targets and memory.
6. MultiBoxFocalLossLayer against Caffe's C++ MultiBoxLoss on SSD300's shapes
   (benchmarks.multibox).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from . import caffe_time, multibox, naive, softmax
from .inputs import IGNORED_FRACTION, fill
from .nets import comparison_net, load_net
from .timing import time_layers

LARGE = (2, 80, 100000)
SMALL = (64, 20)
TARGETS = {"large": {"gamma=2": 0.3, "gamma=1.5": 0.4}, "small": {"gamma=2": 2.5}}
MEMORY_TARGET = 0.05   # peak extra memory of a pass, × the logits blob
KEPT_TARGET = 1.05     # kept between passes: the gradient, × the logits blob (SCE keeps 1× too)

# (row name, label blob, settings) of the focal layers in the large net.
LARGE_LAYERS = [
    ("gamma=2", "label", {"focusing_parameter": 2}),
    ("gamma=1.5", "label", {"focusing_parameter": 1.5}),
    ("gamma=2 ignore", "label_ignore", {"focusing_parameter": 2, "ignore_label": -1}),
    ("gamma=1.5 ignore", "label_ignore", {"focusing_parameter": 1.5, "ignore_label": -1}),
    ("gamma=2 indices", "label_index", {"focusing_parameter": 2}),
    ("gamma=2 alpha positives", "label_index",
     {"focusing_parameter": 2, "alpha": 0.25, "normalization": "positives"}),
]
SMALL_LAYERS = [
    ("gamma=2", "label", {"focusing_parameter": 2}),
    ("gamma=1.5", "label", {"focusing_parameter": 1.5}),
    ("gamma=2 indices", "label_index", {"focusing_parameter": 2}),
]
LABEL_TEXT = {"label": "targets", "label_ignore": "targets, 5% ignored",
              "label_index": "class indices"}


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import numba
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"machine: {cores} cores (nproc), {cpu}; Python {platform.python_version()}, "
            f"numpy {np.__version__}, numba {numba.__version__}")


def load():
    return "load average (1/5/15 min): " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def _name(row):
    return "focal_" + row.replace("=", "").replace(".", "_").replace(" ", "_")


def compare(shape, layers, repeats, scale):
    """Time SCE and the focal layers in one net: (table rows, {row: ours/SCE}, SCE seconds)."""
    net = load_net(comparison_net(shape, [(_name(r), label, s) for r, label, s in layers]))
    fill(net)
    names = ["sce"] + [_name(r) for r, _, _ in layers]
    times = time_layers(net, names, repeats)
    sce_total = times["sce"][2]
    rows = [("SigmoidCrossEntropyLoss (Caffe C++)", "targets", *times["sce"], 1.0)]
    ratios = {}
    for row, label, settings in layers:
        fwd, bwd, total = times[_name(row)]
        ratios[row] = total / sce_total
        rows.append((f"FocalLossLayer {_settings_text(settings)}", LABEL_TEXT[label], fwd, bwd,
                     total, ratios[row]))
    return [_format_row(r, scale) for r in rows], ratios, sce_total


def _settings_text(settings):
    text = f"γ={settings['focusing_parameter']:g}"
    if "ignore_label" in settings:
        text += " ignore_label"
    if "alpha" in settings:
        text += f" α={settings['alpha']:g}"
    if "normalization" in settings:
        text += f" {settings['normalization']}"
    return text


def _format_row(row, scale):
    """A table row; fwd/bwd None where only the total was timed."""
    name, labels, fwd, bwd, total, ratio = row
    def cell(seconds):
        return f"{'—':>10}" if seconds is None else f"{seconds * scale:10.2f}"
    return f"| {name:<50} | {labels:<19} | {cell(fwd)} | {cell(bwd)} | {cell(total)} | {ratio:6.2f} |"


def _header(unit, reference="SCE"):
    return [f"| {'layer':<50} | {'labels':<19} | {'fwd ' + unit:>10} | {'bwd ' + unit:>10} | "
            f"{'total ' + unit:>10} | {'/ ' + reference:>6} |",
            f"|{'-' * 52}|{'-' * 21}|{'-' * 12}|{'-' * 12}|{'-' * 12}|{'-' * 8}|"]


def numpy_core_seconds(shape, repeats):
    """Median forward+backward of the numpy core as the layer ran it before the fast path:
    read_labels + sigmoid_focal_loss_and_gradient over the whole blob (float64 coefficients), then the
    loss_weight multiply into a diff."""
    from focal_loss_layer.core import sigmoid_focal_loss_and_gradient
    from focal_loss_layer.labels import read_labels
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=shape).astype(np.float32)
    labels = (rng.random(shape, dtype=np.float32) < 0.01).astype(np.float32)
    diff = np.empty_like(logits)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        read = read_labels(labels, shape)
        _, grad = sigmoid_focal_loss_and_gradient(logits, read.targets, focusing_parameter=2.0,
                                     valid=read.valid)
        np.multiply(grad, np.float32(1.0), out=diff)
        samples.append(time.perf_counter() - start)
        del read, grad
    return float(np.median(samples))


def _child(module, args, env=None):
    done = subprocess.run([sys.executable, "-m", module] + [str(a) for a in args],
                          cwd=caffe_time.REPO, env=env, capture_output=True, text=True,
                          timeout=1200)
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_lines(shape, kind="sigmoid", target=MEMORY_TARGET):
    env = dict(os.environ, GLOG_minloglevel="2")
    result = _child("benchmarks.memory", ([kind] if kind != "sigmoid" else []) + list(shape), env)
    size = result["logits_bytes"]
    kept = result["kept_bytes"] / size
    lines = [f"peak extra memory at {shape} (logits blob {size / 2**20:.1f} MiB), × the logits "
             "blob: numpy allocations (tracemalloc) and resident-set high-water rise (VmHWM)",
             f"  kept    : tracemalloc {kept:.4f}× (the gradient buffer, made in reshape); target "
             f"≤ {KEPT_TARGET:g}×: {'met' if kept <= KEPT_TARGET else 'NOT MET'}"]
    for name in ("forward", "backward"):
        traced, rss = (result[name][k] / size for k in ("traced_bytes", "rss_bytes"))
        verdict = "met" if max(traced, rss) <= target else "NOT MET"
        lines.append(f"  {name:<8}: tracemalloc {traced:.4f}×, VmHWM {rss:.4f}×; target "
                     f"≤ {target:g}×: {verdict}")
    return lines


def compile_lines():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        first = _child("benchmarks.compile_time", [], env)
        later = _child("benchmarks.compile_time", [], env)
    def text(times):
        return ", ".join(f"{k} {v:.2f} s" for k, v in times.items())
    return [f"JIT: first use on a machine (empty numba cache): {text(first)}",
            f"     every later process (cache loaded):       {text(later)}"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few repeats: checks that the benchmark runs")
    args = parser.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    large = (2, 3, 1000) if args.quick else LARGE
    small = (4, 3) if args.quick else SMALL
    large_repeats, small_repeats = (2, 5) if args.quick else (11, 2000)

    out = [machine(), load(), ""]
    print("\n".join(out), flush=True)
    lines, large_ratios, sce_large = compare(large, LARGE_LAYERS, large_repeats, 1e3)
    block = [f"{large} = {np.prod(large) / 1e6:g} M logits, float32; forward+backward of each "
             f"loss layer alone, medians of {large_repeats} runs", *_header("ms"), *lines]
    core = numpy_core_seconds(large, 1 if args.quick else 3)
    block.append(_format_row(("numpy core, whole blob (pre-fast-path layer) γ=2",
                              "targets", None, None, core, core / sce_large), 1e3))
    naive_size = 200 if args.quick else 20000
    per_logit = naive.seconds_per_logit(naive_size)
    naive_total = per_logit * np.prod(large)
    block.append(_format_row(("naive per-element loop (blog form) γ=2 *", "targets", None, None,
                              naive_total, naive_total / sce_large), 1e3))
    block.append(f"* timed on {naive_size} logits: {per_logit * 1e6:.2f} µs per logit, times "
                 f"{np.prod(large):,} logits")
    print("\n".join(block + [""]), flush=True)
    out += block + [""]

    lines, small_ratios, _ = compare(small, SMALL_LAYERS, small_repeats, 1e6)
    block = [f"{small} = {np.prod(small)} logits: per call, medians of {small_repeats} runs",
             *_header("µs"), *lines, ""]
    print("\n".join(block), flush=True)
    out += block

    checks = []
    for size, ratios in (("large", large_ratios), ("small", small_ratios)):
        for row, target in TARGETS[size].items():
            ratio = ratios[row]
            checks.append(f"target {size} {row}: ours/SCE {ratio:.2f} ≤ {target:g}: "
                          f"{'met' if ratio <= target else 'NOT MET'}")
    block = checks + memory_lines(large)
    if not args.quick:
        block += compile_lines()
    print("\n".join(block + [""]), flush=True)
    print("\n".join(softmax_lines(args.quick)), flush=True)
    print("\n".join([""] + multibox.lines(args.quick)), flush=True)
    block = ["", "caffe time (Caffe's own tool) on the example head, score (2, 80, 100, 100):"]
    block += caffe_time.report(1 if args.quick else 10)
    block += ["", load()]
    print("\n".join(block), flush=True)


def softmax_lines(quick):
    """The softmax section: tables against SoftmaxWithLoss, context, targets and memory."""
    large = softmax.QUICK_LARGE if quick else softmax.LARGE
    classifier = softmax.QUICK_CLASSIFIER if quick else softmax.CLASSIFIER
    small = softmax.QUICK_SMALL if quick else softmax.SMALL
    large_repeats, small_repeats = (2, 5) if quick else (11, 2000)
    labels = f"classes, {IGNORED_FRACTION:.0%} ignored"
    lines = ["SoftmaxFocalLossLayer against Caffe's SoftmaxWithLoss (SWL), both with ignore_label"]
    ratios = {}
    for size, shape, repeats, scale, unit in (("large", large, large_repeats, 1e3, "ms"),
                                               ("classifier", classifier, large_repeats, 1e3, "ms"),
                                               ("small", small, small_repeats, 1e6, "µs")):
        rows, ratios[size] = softmax.compare(shape, repeats)
        lines += ["", f"{shape} = {np.prod(shape):,} logits, float32; forward+backward of each loss "
                      f"layer alone, medians of {repeats} runs", *_header(unit, "SWL")]
        lines += [_format_row((name if settings is None else
                               f"SoftmaxFocalLossLayer {_settings_text(settings)}",
                               labels, fwd, bwd, total, ratio), scale)
                  for name, settings, fwd, bwd, total, ratio in rows]
        if size == "large":
            core = softmax.numpy_core_seconds(shape)
            lines.append(_format_row(("softmax numpy core, whole blob γ=2 (no fast path)", "classes",
                                      None, None, core, core / rows[0][4]), scale))
    lines.append("")
    for size, targets in softmax.TARGETS.items():
        for row, target in targets.items():
            ratio = ratios[size][row]
            lines.append(f"target softmax {size} {row}: ours/SWL {ratio:.2f} ≤ {target:g}: "
                         f"{'met' if ratio <= target else 'NOT MET'}")
    return lines + memory_lines(large, "softmax", softmax.MEMORY_TARGET)


if __name__ == "__main__":
    main()
