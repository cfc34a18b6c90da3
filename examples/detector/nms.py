"""Greedy non-maximum suppression (numpy), per class as RetinaNet's inference does."""
from typing import Optional

import numpy as np

from .anchors import box_iou


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        max_keep: Optional[int] = None) -> np.ndarray:
    """Indices of the boxes kept, highest score first: boxes (M, 4), scores (M,).

    Greedy: take the best remaining box, drop every remaining box whose IoU with it exceeds
    iou_threshold, repeat; each step is one vectorised IoU row against the boxes still in play,
    so the loop runs once per kept box. A box's fate depends only on higher-scoring boxes, so
    stopping after max_keep kept boxes gives the first max_keep of the full result."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while len(order) and (max_keep is None or len(keep) < max_keep):
        best, rest = order[0], order[1:]
        keep.append(best)
        order = rest[box_iou(boxes[best][None], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                iou_threshold: float, max_keep: Optional[int] = None) -> np.ndarray:
    """nms within each class: boxes of different classes never suppress each other. Returns the
    kept indices, highest score first. Each class's boxes are shifted by an offset larger than
    every box, so one nms call on the shifted boxes is the per-class result."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    span = boxes.max() - min(boxes.min(), 0) + 1
    shifted = boxes + (classes.astype(boxes.dtype) * span)[:, None]
    return nms(shifted, scores, iou_threshold, max_keep)
