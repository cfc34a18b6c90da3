"""The paired bootstrap over test images of a difference in COCO AP between two arms.

Each arm was trained with the same S seeds; each (arm, seed) has detections on the same N test
images (examples.detector.coco_eval's format: a list over images of {"boxes" (K, 4) x1 y1 x2 y2,
"scores" (K,), "classes" (K,) in 1..C}; detections[i] is image id i of the ground truth). A
resample draws N images with replacement, the same draw for both arms and every seed; with
counts[i] the number of times image i was drawn, the statistic is

    Δ(counts) = 1/S Σ_s AP(a, s; counts) − 1/S Σ_s AP(b, s; counts),

where AP(·; counts) is COCOeval's AP on the resampled images: an image drawn k times counts k
times (its ground truth and its detections, as k copies with consecutive image ids). The report is,
for AP, AP50 and AP75, Δ(1, …, 1) and the 2.5 and 97.5 percentiles of Δ over B resamples.

Running pycocotools per resample would be B × 2S evaluations; instead COCOeval.evaluate() runs
once per (arm, seed) (image_matches) and COCOeval.accumulate's precision is recomputed with
weights (weighted_ap), vectorised over resamples. For class c and IoU threshold t, with the
class's detections in accumulate's order (by score, highest first, mergesort: ties keep image
order, then the image's own order), w_bd = counts[b, image of d] and

    npig_bc   = Σ_i counts[b, i] · (non-ignored ground truths of class c in image i)
    tp_bd     = Σ_{d' ≤ d} w_bd' · [d' matched at t],  n_bd = Σ_{d' ≤ d} w_bd' · [d' not ignored]
    rc_bd     = tp_bd / npig_bc,   pr_bd = tp_bd / (n_bd + eps)     (eps = np.spacing(1))
    q_bc(r)   = max {pr_bd : rc_bd ≥ r}, 0 if none,   r ∈ {0, 0.01, …, 1}

which is accumulate's "precision made monotone from the right, sampled with searchsorted left,
0 beyond the last recall". Only the points after a true positive can be the maximum (a false
positive lowers the precision at the same recall), so q is evaluated on those. The copies of an
image come one after the other, so a detection of weight k is k consecutive detections, except
for detections tied in score in the same image: their copies interleave (d1 d2 d1 d2), and such
runs are expanded into max(counts[:, i]) repeats, repeat r weighted [counts[b, i] > r].

    AP   = mean of q_bc(r) over the 10 IoU thresholds, the 101 r and the classes with npig_bc > 0
    AP50 = the same at IoU 0.5 only,  AP75 = at IoU 0.75 only

(COCOeval.stats[0:3], areaRng "all", maxDets 100; NaN if no class has ground truth). With all
counts 1 this is coco_eval.evaluate's AP to rounding, and with any counts it is evaluate's AP on
the literally duplicated images (tests/test_bootstrap.py).
"""
import contextlib
import dataclasses
import io
from typing import Dict, List, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

METRICS = ("AP", "AP50", "AP75")
RESAMPLES = 1000
PERCENTILES = (2.5, 97.5)   # the 95 % percentile interval
MAX_ELEMENTS = 4_000_000    # weighted_ap works on (resamples, detections) blocks of about this size


@dataclasses.dataclass
class ClassMatches:
    """One class's detections in COCOeval.accumulate's order (D of them).

    image (D,) image index of each detection; scores (D,) its score (non-increasing);
    tp (T, D) bool, matched to a non-ignored ground truth at IoU threshold t; counted (T, D) bool,
    not ignored (a true or a false positive; False only for matches to crowd ground truth);
    run (D,) id of its run of equal score in the same image (non-decreasing, 0, 1, …)."""
    image: np.ndarray
    scores: np.ndarray
    tp: np.ndarray
    counted: np.ndarray
    run: np.ndarray


@dataclasses.dataclass
class Matches:
    """One (arm, seed)'s COCOeval matching, computed once: per class (catIds order) its
    ClassMatches; gt_counts (N, C), the non-ignored ground truths per image and class;
    iou_thresholds (T,) and recall_thresholds (R,) as in COCOeval.params."""
    classes: List[ClassMatches]
    gt_counts: np.ndarray
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray

    @property
    def num_images(self) -> int:
        return self.gt_counts.shape[0]


def image_matches(gt: COCO, detections: Sequence[Dict[str, np.ndarray]]) -> Matches:
    """Run COCOeval.evaluate() once ("bbox", areaRng "all", maxDets 100) and keep, per class, the
    detections sorted as accumulate sorts them with their match flags at each IoU threshold.
    detections[i] belongs to image id i (as in coco_eval.evaluate); gt's ids must be 0..N-1."""
    image_ids = sorted(gt.getImgIds())
    if image_ids != list(range(len(detections))):
        raise ValueError(f"image_matches needs detections for the ground truth's images 0..N-1 in "
                         f"order: {len(detections)} detection lists for image ids "
                         f"{image_ids[:3]}…")
    with contextlib.redirect_stdout(io.StringIO()):   # pycocotools prints progress lines
        evaluator = COCOeval(gt, _detections_coco(gt, detections), "bbox")
        params = evaluator.params
        params.imgIds = image_ids
        params.areaRng, params.areaRngLbl = params.areaRng[:1], params.areaRngLbl[:1]   # "all"
        evaluator.evaluate()
    category_ids = params.catIds
    num_images, max_det = len(image_ids), params.maxDets[-1]
    num_thresholds = len(params.iouThrs)
    gt_counts = np.zeros((num_images, len(category_ids)), np.int64)
    classes = []
    for k in range(len(category_ids)):   # evalImgs: category-major, then area range, then image
        entries = [(i, e) for i, e in enumerate(evaluator.evalImgs[k * num_images:
                                                                   (k + 1) * num_images])
                   if e is not None]
        for i, e in entries:
            gt_counts[i, k] = np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)
        scores = np.concatenate([np.asarray(e["dtScores"][:max_det], np.float64)
                                 for _, e in entries] + [np.zeros(0)])
        image = np.concatenate([np.full(len(e["dtScores"][:max_det]), i, np.int64)
                                for i, e in entries] + [np.zeros(0, np.int64)])
        matched = np.concatenate([np.asarray(e["dtMatches"])[:, :max_det] for _, e in entries]
                                 + [np.zeros((num_thresholds, 0))], axis=1)
        ignored = np.concatenate([np.asarray(e["dtIgnore"])[:, :max_det] for _, e in entries]
                                 + [np.zeros((num_thresholds, 0))], axis=1)
        order = np.argsort(-scores, kind="mergesort")   # as accumulate
        scores, image = scores[order], image[order]
        matched, counted = matched[:, order] != 0, np.logical_not(ignored[:, order])
        new_run = np.ones(len(order), bool)
        new_run[1:] = (image[1:] != image[:-1]) | (scores[1:] != scores[:-1])
        classes.append(ClassMatches(image=image, scores=scores, tp=matched & counted,
                                    counted=counted, run=np.cumsum(new_run) - 1))
    return Matches(classes=classes, gt_counts=gt_counts,
                   iou_thresholds=np.asarray(params.iouThrs, np.float64),
                   recall_thresholds=np.asarray(params.recThrs, np.float64))


def weighted_ap(matches: Matches, counts: np.ndarray,
                max_elements: int = MAX_ELEMENTS) -> Dict[str, np.ndarray]:
    """AP, AP50 and AP75 of matches on B resamples of its images: counts (B, N) (or (N,)), how
    many times each image is drawn. Returns {metric: (B,) float64}; NaN for a resample without any
    ground truth. Formulas in the module docstring; memory about max_elements floats per block."""
    counts = np.asarray(counts)
    if counts.ndim == 1:
        counts = counts[None]
    if counts.ndim != 2 or counts.shape[1] != matches.num_images:
        raise ValueError(f"counts must be (resamples, {matches.num_images}), got {counts.shape}")
    if np.any(counts < 0):
        raise ValueError("counts must be non-negative")
    counts = counts.astype(np.int64)
    num_resamples = counts.shape[0]
    thresholds = matches.recall_thresholds
    num_ious, num_recalls = len(matches.iou_thresholds), len(thresholds)
    npig = (counts.astype(np.float64) @ matches.gt_counts.astype(np.float64))   # (B, C), exact
    has_gt = npig > 0
    sums = np.zeros((num_resamples, num_ious))   # Σ over classes with gt and recalls of q
    most = counts.max(axis=0)                    # (N,) the largest count of each image
    eps = np.spacing(1)
    for c, cls in enumerate(matches.classes):
        if not len(cls.image) or not has_gt[:, c].any():
            continue   # no detections: q = 0; no gt in any resample: the class is left out
        column, repeat = _columns(cls, most)
        image = cls.image[column]
        tp, counted = cls.tp[:, column], cls.counted[:, column]
        all_counted = bool(counted.all())
        chunk = max(1, max_elements // max(len(column), 1))
        for start in range(0, num_resamples, chunk):
            rows = slice(start, start + chunk)
            drawn = counts[rows][:, image]   # (b, D')
            weight = np.where(repeat < 0, drawn, drawn > repeat).astype(np.float64)
            if all_counted:
                seen = np.cumsum(weight, axis=1)   # tp + fp after each detection
            for t in range(num_ious):
                positions = np.flatnonzero(tp[t])
                if not len(positions):
                    continue   # no true positive: q = 0
                if not all_counted:
                    seen = np.cumsum(weight * counted[t], axis=1)
                tp_sum = np.cumsum(weight[:, positions], axis=1)   # (b, P)
                with np.errstate(divide="ignore", invalid="ignore"):
                    recall = tp_sum / npig[rows, c][:, None]
                precision = tp_sum / (seen[:, positions] + eps)
                envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
                q = _sample(recall, envelope, thresholds)   # (b, R)
                sums[rows, t] += np.where(has_gt[rows, c], q.sum(axis=1), 0.0)
    classes_with_gt = has_gt.sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = {"AP": sums.sum(axis=1) / (num_ious * num_recalls * classes_with_gt)}
        for name, iou in (("AP50", 0.5), ("AP75", 0.75)):
            t = int(np.flatnonzero(np.isclose(matches.iou_thresholds, iou))[0])
            at[name] = sums[:, t] / (num_recalls * classes_with_gt)
    return {name: np.where(classes_with_gt > 0, value, np.nan) for name, value in at.items()}


def resample_counts(num_images: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, num_images) int64: row b counts how often each image is among num_images
    draws with replacement (numpy Generator `seed`)."""
    draws = np.random.default_rng(seed).integers(num_images, size=(resamples, num_images))
    rows = np.arange(resamples)[:, None] * num_images
    return np.bincount((rows + draws).ravel(),
                       minlength=resamples * num_images).reshape(resamples, num_images)


def paired_bootstrap(gt: COCO, detections_a: Sequence[Sequence[Dict[str, np.ndarray]]],
                     detections_b: Sequence[Sequence[Dict[str, np.ndarray]]],
                     resamples: int = RESAMPLES, seed: int = 0) -> Dict[str, Dict]:
    """The paired bootstrap of mean-over-seeds AP(a) − mean-over-seeds AP(b) over test images.

    detections_a, detections_b: a list over seeds of per-image detections (coco_eval format).
    Returns {metric: {"mean": Δ on the original images, "low", "high": the 2.5 and 97.5
    percentiles of Δ over the resamples, "resamples": B}} for AP, AP50, AP75."""
    if not len(detections_a) or not len(detections_b):
        raise ValueError("paired_bootstrap needs at least one seed in each arm")
    if resamples < 1:
        raise ValueError(f"paired_bootstrap needs at least one resample, got {resamples}")
    num_images = len(gt.getImgIds())
    counts = np.vstack([np.ones((1, num_images), np.int64),
                        resample_counts(num_images, resamples, seed)])   # row 0: the original

    def arm_mean(runs):
        values = [weighted_ap(image_matches(gt, run), counts) for run in runs]
        return {m: np.mean([v[m] for v in values], axis=0) for m in METRICS}

    a, b = arm_mean(detections_a), arm_mean(detections_b)
    out = {}
    for metric in METRICS:
        delta = a[metric] - b[metric]
        low, high = np.percentile(delta[1:], PERCENTILES)
        out[metric] = {"mean": float(delta[0]), "low": float(low), "high": float(high),
                       "resamples": int(resamples)}
    return out


def _columns(cls: ClassMatches, most: np.ndarray):
    """The weighted sequence of a class's detections: column (D',) the detection of each column,
    repeat (D',) −1 for a detection standing for all its image's copies (weight = count), r ≥ 0
    for copy r of a detection tied in score with others of its image (weight [count > r]); a tied
    run is repeated max-count times, copy-major (d1 d2 d1 d2), as the copies' images come."""
    size = np.bincount(cls.run)[cls.run]
    tied = size > 1
    if not tied.any():
        return np.arange(len(cls.run)), np.full(len(cls.run), -1)
    copies = np.where(tied, most[cls.image], 1)
    column = np.repeat(np.arange(len(cls.run)), copies)
    first = np.repeat(np.cumsum(copies) - copies, copies)
    repeat = np.where(tied[column], np.arange(len(column)) - first, -1)
    order = np.lexsort((column, repeat, cls.run[column]))   # run, then copy, then detection
    return column[order], repeat[order]


def _sample(recall: np.ndarray, envelope: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """accumulate's q[j] = envelope[searchsorted(recall, thresholds[j], "left")] (0 past the end)
    for each row of recall (b, P) (non-decreasing along P): the index is the number of points
    with recall < threshold j, i.e. with fewer than j + 1 thresholds ≤ their recall."""
    rows, points = recall.shape
    levels = len(thresholds)
    below = np.searchsorted(thresholds, recall, side="right")   # (b, P) in 0..R
    histogram = np.bincount((np.arange(rows)[:, None] * (levels + 1) + below).ravel(),
                            minlength=rows * (levels + 1)).reshape(rows, levels + 1)
    index = np.cumsum(histogram, axis=1)[:, :levels]             # (b, R) in 0..P
    padded = np.concatenate([envelope, np.zeros((rows, 1))], axis=1)
    return np.take_along_axis(padded, index, axis=1)


def _detections_coco(gt: COCO, detections: Sequence[Dict[str, np.ndarray]]) -> COCO:
    """The detections as pycocotools results, rows built as coco_eval.evaluate builds them; a COCO
    without annotations when there are none (loadRes cannot load an empty result set)."""
    rows = [np.column_stack([np.full(len(d["scores"]), image_id), _xywh(d["boxes"]),
                             d["scores"], d["classes"]])
            for image_id, d in enumerate(detections) if len(d["scores"])]
    if rows:
        return gt.loadRes(np.concatenate(rows))
    empty = COCO()
    empty.dataset = {"images": list(gt.imgs.values()), "annotations": [],
                     "categories": list(gt.cats.values())}
    empty.createIndex()
    return empty


def _xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
