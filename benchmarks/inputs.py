"""Benchmark inputs: RetinaNet-like logits and labels (about 1% positive, 5% ignored); for the
softmax nets, one class per position (5% ignored)."""
import numpy as np

POSITIVE_FRACTION = 0.01
IGNORED_FRACTION = 0.05


def fill(net, seed=0):
    """Random x ~ N(0, 3²) and the three label blobs of benchmarks.nets.comparison_net."""
    rng = np.random.default_rng(seed)
    x = net.blobs["x"]
    shape = x.data.shape
    x.data[...] = rng.normal(scale=3.0, size=shape)
    targets = (rng.random(shape, dtype=np.float32) < POSITIVE_FRACTION).astype(np.float32)
    net.blobs["label"].data[...] = targets
    if "label_ignore" in net.blobs:
        ignored = rng.random(shape, dtype=np.float32) < IGNORED_FRACTION
        net.blobs["label_ignore"].data[...] = np.where(ignored, -1.0, targets)
    if "label_index" in net.blobs:
        index_shape = net.blobs["label_index"].data.shape
        positive = rng.random(index_shape, dtype=np.float32) < POSITIVE_FRACTION * shape[1]
        classes = rng.integers(1, shape[1] + 1, size=index_shape)
        net.blobs["label_index"].data[...] = np.where(positive, classes, 0)


def fill_classes(net, ignore_label, seed=0):
    """Random x ~ N(0, 3²) and label_class of benchmarks.nets.softmax_comparison_net: classes
    uniform in 0..C−1, IGNORED_FRACTION of the positions ignore_label."""
    rng = np.random.default_rng(seed)
    x = net.blobs["x"]
    x.data[...] = rng.normal(scale=3.0, size=x.data.shape)
    labels = net.blobs["label_class"]
    classes = rng.integers(0, x.data.shape[1], size=labels.data.shape)
    ignored = rng.random(labels.data.shape) < IGNORED_FRACTION
    labels.data[...] = np.where(ignored, ignore_label, classes)
