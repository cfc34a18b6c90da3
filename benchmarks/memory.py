"""Peak extra memory of one FocalLossLayer forward+backward, measured in a fresh process
(python -m benchmarks.memory N C S...) that prints JSON.

Counted: what the layer allocates from the first forward through backward — the float32 gradient
buffer it keeps included — and nothing Caffe allocates for the net's own blobs (their data and
diffs are touched before measuring). Two measures:
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

from .inputs import fill
from .nets import comparison_net, load_net
from .timing import layer_index

SETTINGS = {"focusing_parameter": 2.0, "alpha": 0.25}


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(shape):
    layers = [("focal", "label", SETTINGS)]
    # Warm up on a small net first: loading the compiled kernels is not the layer's memory.
    small = load_net(comparison_net((2, 3, 5), layers, False, False))
    fill(small)
    small.forward()
    small.backward()
    net = load_net(comparison_net(shape, layers, False, False))
    fill(net)
    for blob in net.blobs.values():
        blob.diff[...] = 0
    k = layer_index(net, "focal")
    gc.collect()
    before_kb = _status_kb("VmRSS")
    _reset_peak_rss()
    tracemalloc.start()
    net._forward(k, k)
    net._backward(k, k)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak_kb = _status_kb("VmHWM")
    logits_bytes = int(np.prod(shape)) * 4
    return {"logits_bytes": logits_bytes, "traced_bytes": traced_peak,
            "rss_bytes": (peak_kb - before_kb) * 1024}


if __name__ == "__main__":
    print(json.dumps(measure(tuple(int(d) for d in sys.argv[1:]))))
