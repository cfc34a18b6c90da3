"""Scoring trained nets from pycaffe: the deploy net with a run's final weights, forwarded over
the held-out data, and per-class average precision of its logits."""
import numpy as np
from sklearn.metrics import average_precision_score


def deploy_outputs(deploy_prototxt: str, weights: str, images: np.ndarray,
                   blob: str = "score", batch_size: int = 100) -> np.ndarray:
    """The deploy net's `blob` for every image: images (N, 1, H, W) -> (N, *blob shape).

    The deploy net's layers take the trained weights by name; the Input layer is reshaped to
    each batch, so any N (and, for the fully-convolutional net, any H, W) works."""
    import caffe  # imported here so the rest of the examples package loads without Caffe
    caffe.set_mode_cpu()
    net = caffe.Net(deploy_prototxt, caffe.TEST, weights=weights)
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        net.blobs["data"].reshape(*batch.shape)
        net.blobs["data"].data[...] = batch
        net.forward()
        outputs.append(net.blobs[blob].data.copy())
    return np.concatenate(outputs)


def per_class_average_precision(scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Average precision of each class's scores: scores, positives (M, C), positives bool.
    Returns (C,) floats; NaN for a class with no positive (AP is undefined there)."""
    return np.array([average_precision_score(positives[:, c], scores[:, c])
                     if positives[:, c].any() else np.nan
                     for c in range(scores.shape[1])])


def cells_as_samples(logits: np.ndarray, labels: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    """Dense outputs as a list of scored cells, ignored cells dropped.

    logits (N, C, H, W); labels (N, 1, H, W) class indices (0 background, 1..C, negative =
    ignored). Returns scores (M, C) and positives (M, C) bool, M the number of kept cells."""
    num_classes = logits.shape[1]
    scores = logits.transpose(0, 2, 3, 1).reshape(-1, num_classes)
    cell_labels = labels.reshape(-1)
    kept = cell_labels >= 0
    positives = cell_labels[kept, None] == np.arange(1, num_classes + 1)[None, :]
    return scores[kept], positives
