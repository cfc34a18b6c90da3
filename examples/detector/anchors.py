"""Anchors, IoU, the RetinaNet assignment rule and the box encoding (numpy, vectorised).

Boxes are (x1, y1, x2, y2) in continuous pixel coordinates: pixel (row i, column j) covers
[j, j + 1) x [i, i + 1), a box's width is x2 - x1 (no "+1"), as in pycocotools' [x, y, w, h].

Anchors follow Detectron's RetinaNet: at each position of a level with stride s, A anchors, one
per (octave scale, aspect ratio), with index a = octave * R + ratio; an anchor of size
`size * 2^(octave/3)` and ratio r = h / w has w = size' / sqrt(r), h = size' * sqrt(r), centred on
((x + 0.5) s, (y + 0.5) s). A level's anchors are laid out (H, W, A, 4), so anchor (y, x, a) is
flat index (y * W + x) * A + a; examples.detector.targets turns that into Detectron's blob layout
(labels (A, H, W), box targets (A*4, H, W), channel a*4 + k).
"""
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

# The paper's thresholds: IoU >= 0.5 positive, < 0.4 background, in between ignored.
POSITIVE_IOU = 0.5
NEGATIVE_IOU = 0.4
IGNORE_LABEL = -1
# Regression targets encoded with unit weights, as Detectron's RetinaNet does
# (detectron/roi_data/retinanet.py calls data_utils.compute_targets with its default weights
# (1, 1, 1, 1); MODEL.BBOX_REG_WEIGHTS = (10, 10, 5, 5) is the Fast R-CNN head's). With unit weights the
# deltas are small, which is why the box loss's smooth L1 turns linear at
# RETINANET.BBOX_REG_BETA = 0.11 instead of 1 (examples.detector.prototxt).
BOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
# Decoded log-size deltas are clipped here (Detectron's log(1000 / 16)): exp() cannot overflow.
MAX_LOG_SIZE_DELTA = float(np.log(1000.0 / 16))


@dataclass(frozen=True)
class Level:
    """One pyramid level: name, stride s (pixels per position), base anchor size (pixels)."""

    name: str
    stride: int
    size: float


# Three levels (P_l has stride 2^l). The digits here are 10-40 pixels tall, so the base anchor is
# 2x the stride (RetinaNet's 4x is for COCO's larger objects relative to the stride).
LEVELS = (Level("p2", 4, 8.0), Level("p3", 8, 16.0), Level("p4", 16, 32.0))
OCTAVE_SCALES = tuple(2.0 ** (octave / 3.0) for octave in range(3))
ASPECT_RATIOS = (0.5, 1.0, 2.0)   # h / w, the paper's {1:2, 1:1, 2:1}
NUM_ANCHORS = len(OCTAVE_SCALES) * len(ASPECT_RATIOS)   # A = 9


def cell_anchors(size: float, scales: Sequence[float] = OCTAVE_SCALES,
                 ratios: Sequence[float] = ASPECT_RATIOS) -> np.ndarray:
    """The A anchors of one position centred on (0, 0): (A, 4), a = octave * R + ratio."""
    sizes = size * np.repeat(np.asarray(scales, float), len(ratios))       # (A,)
    aspect = np.tile(np.asarray(ratios, float), len(scales))               # (A,)
    half_w, half_h = sizes / np.sqrt(aspect) / 2, sizes * np.sqrt(aspect) / 2
    return np.stack([-half_w, -half_h, half_w, half_h], axis=1)


def level_anchors(level: Level, height: int, width: int) -> np.ndarray:
    """All anchors of a level whose feature map is height x width: (H, W, A, 4)."""
    ys = (np.arange(height) + 0.5) * level.stride
    xs = (np.arange(width) + 0.5) * level.stride
    centres = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None],
                                           xs[None, :], ys[:, None]), axis=-1)  # (H, W, 4)
    return centres[:, :, None, :] + cell_anchors(level.size)[None, None]


def feature_shape(level: Level, canvas: int) -> Tuple[int, int]:
    """(H, W) of a level's feature map for a square canvas (the net halves it log2(s) times)."""
    if canvas % level.stride:
        raise ValueError(f"canvas {canvas} is not a multiple of stride {level.stride}")
    return canvas // level.stride, canvas // level.stride


def pyramid_anchors(canvas: int, levels: Sequence[Level] = LEVELS) -> "list[np.ndarray]":
    """Per level, the (H, W, A, 4) anchors of a square canvas."""
    return [level_anchors(level, *feature_shape(level, canvas)) for level in levels]


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of every pair: (M, 4), (G, 4) -> (M, G). Empty boxes have IoU 0 with everything."""
    area_a = _area(boxes_a)
    area_b = _area(boxes_b)
    top_left = np.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = np.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def assign(anchors: np.ndarray, gt_boxes: np.ndarray, gt_classes: np.ndarray,
           positive_iou: float = POSITIVE_IOU, negative_iou: float = NEGATIVE_IOU,
           match_best: bool = True) -> "tuple[np.ndarray, np.ndarray]":
    """RetinaNet's anchor assignment.

    anchors (M, 4); gt_boxes (G, 4); gt_classes (G,) ints 1..C. Returns labels (M,) int:
    the matched object's class where max IoU >= positive_iou, 0 (background) where max IoU <
    negative_iou, IGNORE_LABEL in between; and matched (M,) int, the index of the object with the
    highest IoU (meaningful where labels > 0).

    match_best (Detectron's rule, on top of the paper's thresholds): each object's highest-IoU
    anchors (ties included) are positive too, so an object between anchor shapes is still learnt.
    """
    num = len(anchors)
    if len(gt_boxes) == 0:
        return np.zeros(num, np.int64), np.zeros(num, np.int64)
    iou = box_iou(anchors, gt_boxes)                      # (M, G)
    matched = iou.argmax(axis=1)
    best = iou[np.arange(num), matched]
    labels = np.full(num, IGNORE_LABEL, np.int64)
    labels[best < negative_iou] = 0
    positive = best >= positive_iou
    if match_best:
        per_object_best = iou.max(axis=0)                 # (G,)
        # An anchor that ties an object's best IoU (and overlaps it at all) becomes positive.
        ties = (iou == per_object_best[None, :]) & (per_object_best[None, :] > 0)
        positive |= ties.any(axis=1)
    labels[positive] = np.asarray(gt_classes)[matched[positive]]
    return labels, matched


def encode(anchors: np.ndarray, boxes: np.ndarray, weights=BOX_WEIGHTS) -> np.ndarray:
    """Regression targets of boxes relative to anchors, both (M, 4) -> (M, 4):

        d = (wx (gx - ax) / aw,  wy (gy - ay) / ah,  ww log(gw / aw),  wh log(gh / ah))

    with (ax, ay, aw, ah) the anchor's centre and size, (gx, gy, gw, gh) the box's."""
    ax, ay, aw, ah = _centre_size(anchors)
    gx, gy, gw, gh = _centre_size(boxes)
    wx, wy, ww, wh = weights
    return np.stack([wx * (gx - ax) / aw, wy * (gy - ay) / ah,
                     ww * np.log(gw / aw), wh * np.log(gh / ah)], axis=1)


def decode(anchors: np.ndarray, deltas: np.ndarray, weights=BOX_WEIGHTS) -> np.ndarray:
    """Inverse of encode: anchors (M, 4), deltas (M, 4) -> boxes (M, 4); log-size deltas are
    clipped at MAX_LOG_SIZE_DELTA so that a wild prediction gives a big box, not inf."""
    ax, ay, aw, ah = _centre_size(anchors)
    wx, wy, ww, wh = weights
    cx = ax + deltas[:, 0] / wx * aw
    cy = ay + deltas[:, 1] / wy * ah
    w = aw * np.exp(np.minimum(deltas[:, 2] / ww, MAX_LOG_SIZE_DELTA))
    h = ah * np.exp(np.minimum(deltas[:, 3] / wh, MAX_LOG_SIZE_DELTA))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _centre_size(boxes: np.ndarray):
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w, h
