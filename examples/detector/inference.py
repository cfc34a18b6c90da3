"""Inference as RetinaNet's: the deploy net's per-level outputs, decoded into boxes, then per-class
NMS over all levels.

Per image and level: class logits (A*C, H, W) (their sigmoids are the scores) and deltas
(A*4, H, W) in Detectron's channel order go to (H*W*A, C) and (H*W*A, 4), the order of
examples.detector.anchors' (H, W, A, 4) anchors. (anchor, class) pairs scoring above
SCORE_THRESHOLD, at most TOP_PER_LEVEL per level, are decoded; all levels' candidates then go
through per-class NMS (IoU NMS_IOU) and the best DETECTIONS_PER_IMAGE stay (the paper's 0.05,
1000, 0.5, 100).
"""
from typing import Dict, List, Sequence

import numpy as np
from scipy.special import expit

from .anchors import LEVELS, Level, decode, pyramid_anchors
from .nms import batched_nms

SCORE_THRESHOLD = 0.05
TOP_PER_LEVEL = 1000
NMS_IOU = 0.5
DETECTIONS_PER_IMAGE = 100


def deploy_outputs(deploy_prototxt: str, weights: str, images: np.ndarray,
                   levels: Sequence[Level] = LEVELS, batch_size: int = 50) -> Dict[str, np.ndarray]:
    """Forward images (N, 1, S, S) through the deploy net with the trained weights; return
    {"cls_score_<l>": logits (N, A*C, H, W), "box_pred_<l>": deltas (N, A*4, H, W)} per level."""
    import caffe  # here, so that the rest of the package loads without Caffe
    caffe.set_mode_cpu()
    net = caffe.Net(deploy_prototxt, caffe.TEST, weights=weights)
    names = [f"{kind}_{l.name}" for l in levels for kind in ("cls_score", "box_pred")]
    outputs = {name: [] for name in names}
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        net.blobs["data"].reshape(*batch.shape)
        net.blobs["data"].data[...] = batch
        net.forward()
        for name in names:
            outputs[name].append(net.blobs[name].data.copy())
    return {name: np.concatenate(parts) for name, parts in outputs.items()}


def level_candidates(logits: np.ndarray, deltas: np.ndarray, anchors: np.ndarray,
                     num_classes: int) -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
    """One image, one level: logits (A*C, H, W), deltas (A*4, H, W), anchors (H, W, A, 4).
    Returns boxes (K, 4), scores (K,), classes (K,) 1..C of the candidates kept."""
    height, width, num_anchors, _ = anchors.shape
    # (A*C, H, W) -> (A, C, H, W) -> (H, W, A, C) -> (H*W*A, C): rows in anchor order.
    flat_scores = expit(logits.reshape(num_anchors, num_classes, height, width)
                        .transpose(2, 3, 0, 1).reshape(-1))   # sigmoid, class fastest
    chosen = np.flatnonzero(flat_scores > SCORE_THRESHOLD)
    if len(chosen) > TOP_PER_LEVEL:
        chosen = chosen[np.argpartition(-flat_scores[chosen], TOP_PER_LEVEL)[:TOP_PER_LEVEL]]
    anchor_index, class_index = np.divmod(chosen, num_classes)
    flat_deltas = deltas.reshape(num_anchors, 4, height, width).transpose(2, 3, 0, 1).reshape(-1, 4)
    boxes = decode(anchors.reshape(-1, 4)[anchor_index], flat_deltas[anchor_index])
    return boxes, flat_scores[chosen], class_index + 1


def detect(outputs: Dict[str, np.ndarray], canvas: int, num_classes: int,
           levels: Sequence[Level] = LEVELS) -> List[Dict[str, np.ndarray]]:
    """Per image, {"boxes" (K, 4) clipped to the canvas, "scores" (K,), "classes" (K,) 1..C},
    best first, from deploy_outputs' arrays."""
    anchors = pyramid_anchors(canvas, levels)
    count = len(outputs[f"cls_score_{levels[0].name}"])
    detections = []
    for image in range(count):
        parts = [level_candidates(outputs[f"cls_score_{l.name}"][image],
                                  outputs[f"box_pred_{l.name}"][image], level_anchors, num_classes)
                 for l, level_anchors in zip(levels, anchors)]
        boxes, scores, classes = (np.concatenate(p) for p in zip(*parts))
        boxes = np.clip(boxes, 0, canvas)
        keep = batched_nms(boxes, scores, classes, NMS_IOU, max_keep=DETECTIONS_PER_IMAGE)
        detections.append({"boxes": boxes[keep].astype(np.float32), "scores": scores[keep],
                           "classes": classes[keep]})
    return detections
