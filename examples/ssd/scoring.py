"""Scoring a trained SSD-lite arm: its deploy net (prototxt/ssd/deploy_softmax or
deploy_sigmoid) with Caffe's DetectionOutput (decoding, per-class NMS, the best 100 per image),
from pycaffe, then COCO AP from pycocotools (examples.detector.coco_eval) on a split.

DetectionOutput's rows are [image id, class, score, xmin, ymin, xmax, ymax] with coordinates in
[0, 1]; they are scaled to pixels and clipped to the image, as SSD does when it writes its
results, for the scorer, whose ground truth is in pixels.
"""
from typing import Dict, List

import numpy as np

from ..detector.coco_eval import coco_ground_truth, evaluate
from .batches import ground_truth
from .prototxt import DIGITS

BATCH = 32


def detection_output(deploy: str, weights: str, images: np.ndarray) -> np.ndarray:
    """DetectionOutput's rows (K, 7) for images (N, 1, S, S), image ids 0..N-1 over all batches;
    DetectionOutput's placeholder rows for an image without detections (class -1) left out."""
    import caffe  # here, so that the rest of the example loads without Caffe
    caffe.set_mode_cpu()
    net = caffe.Net(deploy, caffe.TEST, weights=weights)
    rows = []
    for start in range(0, len(images), BATCH):
        batch = images[start:start + BATCH]
        net.blobs["data"].reshape(*batch.shape)
        net.blobs["data"].data[...] = batch
        out = net.forward()["detection_out"].reshape(-1, 7).copy()
        out = out[out[:, 1] >= 0]
        out[:, 0] += start
        rows.append(out)
    return np.concatenate(rows)


def detections(rows: np.ndarray, count: int, height: int, width: int) -> List[Dict]:
    """Per image, {"boxes" (K, 4) pixels clipped to the image, "scores" (K,), "classes" (K,)}."""
    scale = np.array([width, height, width, height], np.float32)
    out = []
    for image in range(count):
        mine = rows[rows[:, 0] == image]
        boxes = np.clip(mine[:, 3:7] * scale, 0, scale)
        out.append({"boxes": boxes, "scores": mine[:, 2], "classes": mine[:, 1].astype(np.int64)})
    return out


def score(deploy: str, weights: str, split: Dict[str, np.ndarray]) -> Dict:
    """COCO AP, AP50, AP75 (and per-class AP) of the weights on a split (examples.ssd.batches'
    arrays), with a summary of DetectionOutput's rows and the per-image detections."""
    images = split["images"]
    rows = detection_output(deploy, weights, images)
    found = detections(rows, len(images), *images.shape[2:])
    boxes, classes = ground_truth(split)
    metrics = evaluate(coco_ground_truth(boxes, classes, images.shape[-1], DIGITS), found)
    metrics.pop("pr50")
    metrics["detection_output"] = {
        "rows": int(len(rows)), "per_image": float(len(rows) / len(images)),
        "score_min": float(rows[:, 2].min()) if len(rows) else None,
        "score_max": float(rows[:, 2].max()) if len(rows) else None,
        "coordinate_min": float(rows[:, 3:7].min()) if len(rows) else None,
        "coordinate_max": float(rows[:, 3:7].max()) if len(rows) else None,
        "classes": sorted({int(c) for c in rows[:, 1]})}
    metrics["detections"] = found
    return metrics
