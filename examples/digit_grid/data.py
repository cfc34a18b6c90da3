"""Example 2 data: canvases with a few real digit images on an empty background, labelled per
cell of the net's output grid, in class-index form with an ignore band around each object.

A canvas is CANVAS×CANVAS pixels; the net's output has stride STRIDE, so GRID×GRID cells, each
with NUM_CLASSES logits. A digit is positive at the one cell holding its centre (label 1..10,
the digit + 1); the 8 cells around it, which see part of the digit, are ignored (IGNORE_LABEL);
every other cell is background (0). With 1..3 digits per canvas, positives are at most
3 in 2560 class logits — rarer than 1 in 500.
"""
import numpy as np

from ..digits.data import NUM_CLASSES, DigitImages

CANVAS = 64
STRIDE = 4
GRID = CANVAS // STRIDE
DIGIT = 8
MAX_DIGITS_PER_CANVAS = 3
IGNORE_LABEL = -1
# Centre cells at least this many cells apart (Chebyshev): digits never overlap and no
# object's ignore band covers another object's centre.
MIN_CELL_DISTANCE = 3
MAX_POSITIVE_SHARE = 1 / 500


def make_canvases(digits: DigitImages, count: int, seed: int) -> "tuple[np.ndarray, np.ndarray]":
    """count canvases (count, 1, CANVAS, CANVAS) float32 and their cell labels
    (count, 1, GRID, GRID) float32: 0 background, 1..10 digit class + 1, IGNORE_LABEL ignored."""
    rng = np.random.default_rng(seed)
    canvases = np.zeros((count, 1, CANVAS, CANVAS), np.float32)
    labels = np.zeros((count, 1, GRID, GRID), np.float32)
    for canvas, label in zip(canvases[:, 0], labels[:, 0]):
        centres = []
        for _ in range(rng.integers(1, MAX_DIGITS_PER_CANVAS + 1)):
            top, left, cell = _free_position(rng, centres)
            centres.append(cell)
            which = rng.integers(len(digits.digits))
            canvas[top:top + DIGIT, left:left + DIGIT] = digits.images[which, 0]
            row, col = cell
            band = label[max(row - 1, 0):row + 2, max(col - 1, 0):col + 2]
            band[band == 0] = IGNORE_LABEL
            label[row, col] = digits.digits[which] + 1
    return canvases, labels


def _free_position(rng, centres):
    """A random top-left pixel for a digit whose centre cell keeps MIN_CELL_DISTANCE from the
    centres already placed; returns (top, left, (row, col))."""
    while True:
        top, left = rng.integers(0, CANVAS - DIGIT + 1, size=2)
        # The digit's centre lies between its pixels 3 and 4, i.e. at top + DIGIT/2.
        cell = ((top + DIGIT // 2) // STRIDE, (left + DIGIT // 2) // STRIDE)
        if all(max(abs(cell[0] - r), abs(cell[1] - c)) >= MIN_CELL_DISTANCE for r, c in centres):
            return int(top), int(left), (int(cell[0]), int(cell[1]))


def per_class_targets(labels: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    """Index labels (N, 1, GRID, GRID) -> (targets, mask), both (N, NUM_CLASSES, GRID, GRID)
    float32: the form Caffe's SigmoidCrossEntropyLoss takes, which has no ignore_label in this
    Caffe, so mask (0 at ignored cells, else 1) carries the ignore band to the net instead."""
    class_ids = np.arange(1, NUM_CLASSES + 1, dtype=np.float32).reshape(1, -1, 1, 1)
    targets = (labels == class_ids).astype(np.float32)
    mask = np.broadcast_to(labels != IGNORE_LABEL, targets.shape).astype(np.float32)
    return targets, mask


def positive_share(labels: np.ndarray) -> float:
    """Positive class logits / all class logits, for index labels (N, 1, GRID, GRID)."""
    return np.count_nonzero(labels > 0) / (labels.size * NUM_CLASSES)


def grid_datasets(digits: DigitImages, count: int, seed: int) -> dict:
    """HDF5 datasets for the digit_grid nets: data (N, 1, 64, 64), label (N, 1, 16, 16) index
    form for FocalLossLayer, target and mask (N, 10, 16, 16) for the SigmoidCrossEntropyLoss net."""
    canvases, labels = make_canvases(digits, count, seed)
    share = positive_share(labels)
    if share > MAX_POSITIVE_SHARE:
        raise AssertionError(f"positives are {share:.5f} of class logits, above {MAX_POSITIVE_SHARE}")
    targets, mask = per_class_targets(labels)
    return {"data": canvases, "label": labels, "target": targets, "mask": mask}
