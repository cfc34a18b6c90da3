"""The memory a FocalLossLayer keeps (its gradient buffer, made in reshape when the net is made),
and the peak extra memory of one forward and of its backward, each measured on its own, in a
fresh process (python -m benchmarks.memory N C S...) that prints JSON; of a
SoftmaxFocalLossLayer with python -m benchmarks.memory softmax N C S....

Counted: what the layer allocates in a pass after a first one (whose forward touches the kept
gradient's pages: that buffer is the `kept` figure, numpy's allocation when the net is made) and
nothing Caffe allocates for the net's own blobs (their data and diffs are touched before
measuring). Two measures per pass:
- traced: tracemalloc's peak over that window (numpy registers every array it allocates);
- rss: the rise of the process's resident-set high-water mark (VmHWM, reset through
  /proc/self/clear_refs) over its resident size before the window, which also sees memory that
  numpy does not allocate (numba's per-call scratch, thread stacks).
"""
import gc
import json
import sys
import tracemalloc

import numpy as np

from .inputs import fill, fill_classes
from .nets import IGNORE_LABEL, comparison_net, load_net, softmax_comparison_net
from .timing import layer_index

SETTINGS = {"focusing_parameter": 2.0, "alpha": 0.25}
SOFTMAX_SETTINGS = {"focusing_parameter": 1.5, "alpha": 0.25, "ignore_label": IGNORE_LABEL}


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _filled_net(shape, kind):
    """The comparison net with one layer "focal" of this kind, its inputs filled."""
    if kind == "softmax":
        net = load_net(softmax_comparison_net(shape, [("focal", SOFTMAX_SETTINGS)]))
        fill_classes(net, IGNORE_LABEL)
    else:
        net = load_net(comparison_net(shape, [("focal", "label", SETTINGS)], False, False))
        fill(net)
    return net


def measure(shape, kind="sigmoid"):
    # Warm up on a small net first: loading the compiled kernels is not the layer's memory.
    small = _filled_net((2, 3, 5), kind)
    small.forward()
    small.backward()
    gc.collect()
    tracemalloc.start()
    net = _filled_net(shape, kind)     # Caffe's own blobs are not numpy allocations
    kept = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    for blob in net.blobs.values():
        blob.diff[...] = 0
    k = layer_index(net, "focal")
    # One pass first: it touches the kept gradient's pages (the `kept` figure), which are the
    # layer's memory between passes, not a pass's extra.
    net._forward(k, k)
    net._backward(k, k)
    gc.collect()
    result = {"logits_bytes": int(np.prod(shape)) * 4, "kept_bytes": kept}
    for name, run in (("forward", lambda: net._forward(k, k)),
                      ("backward", lambda: net._backward(k, k))):
        result[name] = _peak_extra(run)
    return result


def _peak_extra(run):
    """{traced_bytes, rss_bytes} of run(): tracemalloc's peak, and the rise of VmHWM over VmRSS."""
    before_kb = _status_kb("VmRSS")
    _reset_peak_rss()
    tracemalloc.start()
    run()
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"traced_bytes": traced_peak, "rss_bytes": (_status_kb("VmHWM") - before_kb) * 1024}


if __name__ == "__main__":
    arguments = sys.argv[1:]
    kind = arguments.pop(0) if arguments and arguments[0] == "softmax" else "sigmoid"
    print(json.dumps(measure(tuple(int(d) for d in arguments), kind)))
