"""SSD's MultiBoxLoss bookkeeping in numpy, without Caffe: the ground truth in the label blob,
matching priors to boxes, encoding the matched boxes, and hard-negative mining. What SSD's
bbox_util.cpp does, vectorised over the priors, and computed in float32 in C++'s order of
operations where C++ computes in float, so that overlaps and matches agree bit for bit.

Shapes: P priors, G ground-truth boxes of one image, C classes (background included). Boxes are
(xmin, ymin, xmax, ymax), normalised to [0, 1] as SSD's. A match index per prior is the box it
is matched to (0..G−1), NO_MATCH, or IGNORED (a prior crossing the image border under
ignore_cross_boundary_bbox: neither positive nor a mining candidate).
"""
from typing import List, Tuple

import numpy as np

from .errors import InputError

NO_MATCH, IGNORED = -1, -2
LABEL_ROW = 8       # [image id, class, instance id, xmin, ymin, xmax, ymax, difficult]
FLT_MIN = np.float32(np.finfo(np.float32).tiny)
_F = np.float32


def read_ground_truth(rows: np.ndarray, num_images: int, num_classes: int,
                      background_label_id: int, use_difficult_gt: bool
                      ) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Per image, (labels (G,) int, boxes (G, 4) float32) from SSD's label rows (any shape whose
    count is a multiple of 8, read as rows of 8). Rows whose image id is −1 mean "no box" (SSD's
    data layer writes one such row for a batch without boxes); difficult boxes are dropped
    unless use_difficult_gt. InputError naming the row for anything else that C++ would misread
    or abort on: an image id outside 0..N−1, a class outside 0..C−1 or the background, a box
    that is not finite or is inverted (xmax < xmin or ymax < ymin: swapped coordinates), a
    difficult flag other than 0 or 1. A box of zero width or height is kept, as C++ keeps it:
    it overlaps no prior, so it is never matched."""
    rows = np.asarray(rows, dtype=np.float32)
    if rows.size % LABEL_ROW:
        raise InputError(f"bottom[3] (labels) has {rows.size} values, not a multiple of 8: SSD's "
                         "label blob is (1, 1, G, 8), rows [image id, class, instance id, xmin, "
                         "ymin, xmax, ymax, difficult]")
    rows = rows.reshape(-1, LABEL_ROW)
    kept = rows[:, 0] != -1
    image, label, boxes, difficult = rows[:, 0], rows[:, 1], rows[:, 3:7], rows[:, 7]
    problems = [
        (~np.isin(image, np.arange(num_images)),
         f"its image id {{}} is not an image of this batch (0..{num_images - 1}, or -1 for "
         "no box)", 0),
        (~np.isin(label, np.arange(num_classes)) | (label == background_label_id),
         f"its class {{}} is not an object class (0..{num_classes - 1} but not "
         f"background_label_id {background_label_id})", 1),
        (~np.isfinite(boxes).all(axis=1), "its box {} is not finite", slice(3, 7)),
        (~((boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])),
         "its box {} is inverted (xmax < xmin or ymax < ymin: coordinates swapped?); rows are "
         "[image id, class, instance id, xmin, ymin, xmax, ymax, difficult]", slice(3, 7)),
        (~np.isin(difficult, (0, 1)), "its difficult flag {} is not 0 or 1", 7),
    ]
    for bad, why, column in problems:
        bad &= kept
        if bad.any():
            index = int(np.argmax(bad))
            value = rows[index, column]
            shown = value.tolist() if np.ndim(value) else value.item()
            raise InputError(f"bottom[3] (labels) row {index} {rows[index].tolist()}: "
                             + why.format(shown))
    if not use_difficult_gt:
        kept &= difficult == 0
    image = image.astype(np.int64)
    return [(label[kept & (image == i)].astype(np.int64), boxes[kept & (image == i)])
            for i in range(num_images)]


def box_sizes(boxes: np.ndarray) -> np.ndarray:
    """Areas (float32) of boxes (..., 4); 0 where xmax < xmin or ymax < ymin (BBoxSize)."""
    width, height = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    return np.where((width < 0) | (height < 0), _F(0), width * height)


def overlaps(priors: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Jaccard overlaps (P, G) float32 of priors (P, 4) with boxes (G, 4), as JaccardOverlap
    computes them: intersection / (prior area + box area − intersection), 0 without overlap."""
    p, b = priors[:, None, :], boxes[None, :, :]
    apart = ((b[..., 0] > p[..., 2]) | (b[..., 2] < p[..., 0])
             | (b[..., 1] > p[..., 3]) | (b[..., 3] < p[..., 1]))
    width = np.minimum(p[..., 2], b[..., 2]) - np.maximum(p[..., 0], b[..., 0])
    height = np.minimum(p[..., 3], b[..., 3]) - np.maximum(p[..., 1], b[..., 1])
    inside = ~apart & (width > 0) & (height > 0)
    intersection = np.where(inside, width * height, _F(0))
    union = (box_sizes(priors)[:, None] + box_sizes(boxes)[None, :]) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(inside, intersection / union, _F(0))


def match_priors(overlap: np.ndarray, match_type: str, overlap_threshold: float,
                 ignored: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(match (P,) int, best overlap (P,) float32) of MatchBBox for one image.

    Bipartite first, whatever the threshold: while boxes are left, the largest overlap above
    1e-6 between an unmatched prior and a box not yet taken makes a match (ties to the lowest
    prior, then the lowest box). Then, for PER_PREDICTION, each prior still unmatched takes the
    box it overlaps most if that overlap is at least overlap_threshold. ignored (P,) bool: priors
    crossing the border under ignore_cross_boundary_bbox, IGNORED and overlapping nothing.
    best overlap: of a prior's match, else its largest overlap above 1e-6, else 0 (what mining
    compares with neg_overlap)."""
    num_priors, num_boxes = overlap.shape
    match = np.where(ignored, IGNORED, NO_MATCH)
    counted = np.where((overlap > 1e-6) & ~ignored[:, None], overlap, _F(-1))
    best = np.maximum(counted.max(axis=1, initial=-1), 0).astype(np.float32)
    if num_boxes == 0:
        return match, best
    pool = counted.copy()
    for _ in range(num_boxes):
        flat = int(np.argmax(pool))             # row-major: the lowest prior, then box
        prior, box = divmod(flat, num_boxes)
        if pool[prior, box] < 0:
            break
        match[prior], best[prior] = box, pool[prior, box]
        pool[prior, :] = -1
        pool[:, box] = -1
    if match_type == "PER_PREDICTION":
        candidates = np.where(counted >= overlap_threshold, counted, _F(-1))
        box = np.argmax(candidates, axis=1)
        value = candidates[np.arange(num_priors), box]
        takes = (match == NO_MATCH) & (value >= 0) & (value >= overlap_threshold)
        match = np.where(takes, box, match)
        best = np.where(takes, value, best)
    return match, best


def encode_boxes(priors: np.ndarray, variances: np.ndarray, boxes: np.ndarray,
                 code_type: str) -> np.ndarray:
    """The regression targets (M, 4) float32 of boxes (M, 4) against their priors (M, 4) with
    variances (M, 4), as EncodeBBox with the variance in the code (encode_variance_in_target
    false). CORNER: (box − prior) / variance per coordinate. CENTER_SIZE: centre offsets over the
    prior's size, log size ratios, each over its variance."""
    if code_type == "CORNER":
        return (boxes - priors) / variances
    prior_w, prior_h = priors[:, 2] - priors[:, 0], priors[:, 3] - priors[:, 1]
    prior_cx, prior_cy = (priors[:, 0] + priors[:, 2]) / 2, (priors[:, 1] + priors[:, 3]) / 2
    box_w, box_h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    box_cx, box_cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([(box_cx - prior_cx) / prior_w / variances[:, 0],
                     (box_cy - prior_cy) / prior_h / variances[:, 1],
                     np.log(box_w / prior_w) / variances[:, 2],
                     np.log(box_h / prior_h) / variances[:, 3]], axis=1).astype(np.float32)


def softmax_mining_loss(conf: np.ndarray, label: int, gamma: float) -> np.ndarray:
    """Per prior, the softmax loss of class `label` for conf (..., C) float32: −log p capped at
    −log FLT_MIN (≈ 87.34), as ComputeConfLoss, times (1 − p)^γ (the focal loss; γ = 0: C++'s)."""
    shifted = conf - conf.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    p = exp[..., label] / exp.sum(axis=-1)
    loss = -np.log(np.maximum(p, FLT_MIN))
    return loss if gamma == 0 else loss * (1 - p) ** _F(gamma)


def logistic_mining_loss(conf: np.ndarray, label: int, gamma: float,
                         alpha=None) -> np.ndarray:
    """Per prior, Σ over classes of the sigmoid loss with target 1 on `label` and 0 elsewhere,
    for conf (..., C) float32: ComputeConfLoss's cross-entropy at γ = 0 without α, else the
    layer's focal terms a⁺·(1−p)^γ·(−log p) and a⁻·p^γ·(−log(1−p)) (a⁺ = α, a⁻ = 1 − α)."""
    x = conf
    positive = x >= 0
    softplus_neg = np.log1p(np.exp(-np.abs(x)))         # log(1 + e^−|x|)
    minus_log_p = np.where(positive, 0, -x) + softplus_neg      # −log σ(x)
    minus_log_q = np.where(positive, x, 0) + softplus_neg       # −log(1 − σ(x))
    target = np.zeros(x.shape[-1], bool)
    target[label] = True
    terms = np.where(target, minus_log_p, minus_log_q)
    if gamma:
        terms = terms * np.exp(-_F(gamma) * np.where(target, minus_log_q, minus_log_p))
    if alpha is not None:
        terms = terms * np.where(target, _F(alpha), _F(1 - alpha))
    return terms.sum(axis=-1)


def mine_hard_negatives(loss: np.ndarray, eligible: np.ndarray, num_positives: int,
                        neg_pos_ratio: float) -> np.ndarray:
    """The hard negatives of one image (SSD's MAX_NEGATIVE, OHEM in the focal-loss paper's
    Table 1d): among the eligible candidates, the int(num_positives × neg_pos_ratio) of highest
    loss (all of them if fewer), as indices in increasing order. loss, eligible: (P,)."""
    candidates = np.flatnonzero(eligible)
    count = min(int(num_positives * np.float32(neg_pos_ratio)), len(candidates))
    if count <= 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-loss[candidates], kind="stable")[:count]
    return np.sort(candidates[order])
