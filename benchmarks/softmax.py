"""`make bench`, the softmax section: SoftmaxFocalLossLayer against Caffe's C++ SoftmaxWithLoss
(SWL) in the same net, on the same bottoms, turn about (benchmarks.timing); medians.

1. A segmentation-sized blob, (8, 21, 256, 256): 8 images, 21 classes (PASCAL VOC), 256×256
   positions, 11 M logits, 5% of positions ignore_label (as both layers are configured).
2. A classifier's blob, (2048, 1000): no spatial dims, many classes (ImageNet-like).
3. A small blob, (64, 21), where per-call overhead dominates.
4. Context: the numpy core (softmax_core) over the large blob, timed once.
"""
import time

import numpy as np

from .inputs import fill_classes
from .nets import IGNORE_LABEL, load_net, softmax_comparison_net
from .timing import time_layers

LARGE = (8, 21, 256, 256)
CLASSIFIER = (2048, 1000)
SMALL = (64, 21)
QUICK_LARGE, QUICK_CLASSIFIER, QUICK_SMALL = (2, 5, 8, 8), (8, 40), (4, 3)
TARGETS = {"large": {"gamma=2": 1.0, "gamma=1.5": 1.5}, "small": {"gamma=2": 3.0}}
MEMORY_TARGET = 0.1   # peak extra memory of a pass, × the logits blob

# (row name, settings) of the SoftmaxFocalLossLayers, all with ignore_label.
LAYERS = [
    ("gamma=2", {"focusing_parameter": 2}),
    ("gamma=1.5", {"focusing_parameter": 1.5}),
    ("gamma=0", {"focusing_parameter": 0}),
    ("gamma=2 alpha", {"focusing_parameter": 2, "alpha": 0.25}),
]
REFERENCE_ROW = "SoftmaxWithLoss (Caffe C++)"


def _name(row):
    return "softmax_" + row.replace("=", "").replace(".", "_").replace(" ", "_")


def compare(shape, repeats):
    """Time SWL and the SoftmaxFocalLossLayers in one net: (rows (name, settings or None, fwd s,
    bwd s, total s, ours/SWL), {row: ours/SWL}). settings None marks the reference row."""
    layers = [(_name(row), dict(settings, ignore_label=IGNORE_LABEL)) for row, settings in LAYERS]
    net = load_net(softmax_comparison_net(shape, layers))
    fill_classes(net, IGNORE_LABEL)
    times = time_layers(net, ["swl"] + [name for name, _ in layers], repeats)
    reference = times["swl"][2]
    rows = [(REFERENCE_ROW, None, *times["swl"], 1.0)]
    ratios = {}
    for (row, _), (name, settings) in zip(LAYERS, layers):
        ratios[row] = times[name][2] / reference
        rows.append((row, settings, *times[name], ratios[row]))
    return rows, ratios


def numpy_core_seconds(shape):
    """One forward+backward of softmax_core.softmax_focal_loss_and_gradient over the whole blob (float32 in,
    float64 arithmetic where numpy promotes), as a layer without the fast path would run it."""
    from focal_loss_layer.softmax_core import softmax_focal_loss_and_gradient
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=shape).astype(np.float32)
    labels = rng.integers(0, shape[1], size=shape[:1] + shape[2:]).astype(np.float32)
    start = time.perf_counter()
    softmax_focal_loss_and_gradient(logits, labels, focusing_parameter=2.0)
    return time.perf_counter() - start
