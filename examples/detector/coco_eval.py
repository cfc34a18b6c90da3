"""COCO-style scoring with pycocotools: AP (mean over IoU 0.50:0.05:0.95), AP50, AP75, per-class
AP and the precision-recall curves, from in-memory ground truth and detections.

Boxes come in as (x1, y1, x2, y2) (examples.detector.anchors) and go to pycocotools as
[x, y, w, h]; classes are 1..C (COCO category ids), images numbered 0..N-1.
"""
import contextlib
import io
from typing import Dict, List, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

# COCOeval.stats order (summarize()): the ones reported.
STATS = {"AP": 0, "AP50": 1, "AP75": 2, "AP_small": 3, "AP_medium": 4}


def coco_ground_truth(boxes: Sequence[np.ndarray], classes: Sequence[np.ndarray], canvas: int,
                      num_classes: int) -> COCO:
    """A pycocotools COCO object for per-image boxes (G_i, 4) and classes (G_i,)."""
    annotations = []
    for image_id, (image_boxes, image_classes) in enumerate(zip(boxes, classes)):
        for box, category in zip(_xywh(image_boxes), image_classes):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": int(category), "bbox": box.tolist(),
                                "area": float(box[2] * box[3]), "iscrowd": 0})
    coco = COCO()
    coco.dataset = {
        "images": [{"id": i, "width": canvas, "height": canvas} for i in range(len(boxes))],
        "annotations": annotations,
        "categories": [{"id": c, "name": str(c - 1)} for c in range(1, num_classes + 1)]}
    with contextlib.redirect_stdout(io.StringIO()):   # pycocotools prints progress lines
        coco.createIndex()
    return coco


def evaluate(gt: COCO, detections: List[Dict[str, np.ndarray]]) -> Dict:
    """Score per-image detections {"boxes" (K, 4), "scores" (K,), "classes" (K,)} against gt.

    Returns {"AP", "AP50", "AP75", "AP_small", "AP_medium", "ap_per_class" (C,) (AP over IoU
    0.50:0.95 per class, NaN for a class without objects), "ap50_per_class", "pr50": {"recall"
    (101,), "precision" (C, 101)} at IoU 0.5, all areas, 100 detections per image}."""
    rows = [np.column_stack([np.full(len(d["scores"]), image_id), _xywh(d["boxes"]),
                             d["scores"], d["classes"]])
            for image_id, d in enumerate(detections) if len(d["scores"])]
    num_classes = len(gt.getCatIds())
    if not rows:   # pycocotools cannot load an empty result set: nothing detected, AP 0
        zeros = np.zeros(num_classes)
        return dict({key: 0.0 for key in STATS}, ap_per_class=zeros.tolist(),
                    ap50_per_class=zeros.tolist(),
                    pr50={"recall": np.linspace(0, 1, 101).tolist(),
                          "precision": np.zeros((num_classes, 101)).tolist()})
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(np.concatenate(rows))
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.params.imgIds = sorted(gt.getImgIds())   # images without detections count too
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    # precision: (IoU thresholds T, recall points R, classes K, area ranges, max dets); -1 = none.
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    valid = precision > -1
    per_class = np.where(valid.any(axis=(0, 1)),
                         np.sum(np.where(valid, precision, 0), axis=(0, 1))
                         / np.maximum(valid.sum(axis=(0, 1)), 1), np.nan)
    at50 = precision[0]   # (R, K), IoU 0.5
    per_class50 = np.where((at50 > -1).any(axis=0), np.clip(at50, 0, None).mean(axis=0), np.nan)
    out = {key: float(evaluator.stats[index]) for key, index in STATS.items()}
    out.update(ap_per_class=per_class.tolist(), ap50_per_class=per_class50.tolist(),
               pr50={"recall": evaluator.params.recThrs.tolist(),
                     "precision": np.clip(at50, 0, None).T.tolist()})
    return out


def _xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
