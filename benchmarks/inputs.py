"""Benchmark inputs: RetinaNet-like logits and labels (about 1% positive, 5% ignored)."""
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
