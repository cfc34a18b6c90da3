"""Per-anchor training targets in Detectron's blob layout, computed when the data is made.

For each pyramid level with A anchors on an H x W feature map (anchors laid out (H, W, A, 4), see
examples.detector.anchors):

    labels_<level>       (N, A, H, W)    class indices: 0 background, 1..C, IGNORE_LABEL (-1)
    box_targets_<level>  (N, A*4, H, W)  encoded deltas, channel a*4 + k; zero off positives
    num_positives        (N, 1)          positive anchors of the image, all levels

The labels are the FocalLossLayer's index form with `num_anchors` A (logits (N, A*C, H, W),
channel a*C + c); the per-image positive counts, summed over the batch by Caffe's Reduction
layer, are its normalizer bottom.
"""
from typing import Dict, List, Sequence

import numpy as np

from .anchors import LEVELS, Level, assign, encode, pyramid_anchors


def image_targets(level_anchors: List[np.ndarray], boxes: np.ndarray,
                  classes: np.ndarray) -> "tuple[list, list]":
    """One image: level_anchors per level (H, W, A, 4); boxes (G, 4); classes (G,) 1..C.
    Returns per level labels (A, H, W) and box targets (A*4, H, W), both float32.

    All levels' anchors are assigned together: an object's best anchor is sought across levels."""
    shapes = [anchors.shape[:3] for anchors in level_anchors]
    flat = np.concatenate([anchors.reshape(-1, 4) for anchors in level_anchors])
    labels, matched = assign(flat, boxes, classes)
    deltas = np.zeros_like(flat)
    positive = labels > 0
    if positive.any():
        deltas[positive] = encode(flat[positive], boxes[matched[positive]])
    level_labels, level_deltas = [], []
    start = 0
    for height, width, num_anchors in shapes:
        stop = start + height * width * num_anchors
        # (H, W, A) -> (A, H, W) and (H, W, A, 4) -> (A, 4, H, W) -> (A*4, H, W): Detectron's order.
        level_labels.append(labels[start:stop].reshape(height, width, num_anchors)
                            .transpose(2, 0, 1).astype(np.float32))
        level_deltas.append(deltas[start:stop].reshape(height, width, num_anchors, 4)
                            .transpose(2, 3, 0, 1).reshape(num_anchors * 4, height, width)
                            .astype(np.float32))
        start = stop
    return level_labels, level_deltas


def dataset_targets(images: np.ndarray, boxes: Sequence[np.ndarray], classes: Sequence[np.ndarray],
                    levels: Sequence[Level] = LEVELS) -> Dict[str, np.ndarray]:
    """The HDF5 datasets of a split's targets (see the module docstring), for images
    (N, 1, S, S) and their per-image boxes and classes."""
    canvas = images.shape[-1]
    anchors = pyramid_anchors(canvas, levels)
    count = len(images)
    out = {}
    for level, level_anchors in zip(levels, anchors):
        height, width, num_anchors, _ = level_anchors.shape
        out[f"labels_{level.name}"] = np.zeros((count, num_anchors, height, width), np.float32)
        out[f"box_targets_{level.name}"] = np.zeros((count, num_anchors * 4, height, width),
                                                    np.float32)
    for i, (image_boxes, image_classes) in enumerate(zip(boxes, classes)):
        labels, deltas = image_targets(anchors, image_boxes, image_classes)
        for level, level_labels, level_deltas in zip(levels, labels, deltas):
            out[f"labels_{level.name}"][i] = level_labels
            out[f"box_targets_{level.name}"][i] = level_deltas
    out["num_positives"] = sum((out[f"labels_{level.name}"] > 0).sum(axis=(1, 2, 3))
                               for level in levels).astype(np.float32).reshape(count, 1)
    return out


def anchors_per_image(canvas: int, levels: Sequence[Level] = LEVELS) -> int:
    return sum(a.shape[0] * a.shape[1] * a.shape[2] for a in pyramid_anchors(canvas, levels))
