"""Example 1 data: scikit-learn's handwritten digits (8×8, 1797 images, shipped inside the
package), split into train and held-out test, with a few classes made rare in training only."""
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

NUM_CLASSES = 10
TEST_FRACTION = 0.4
# 3, 5 and 8 share strokes with each other and with 9: rare and easily confused, the hard case.
RARE_CLASSES = (3, 5, 8)
RARE_KEPT_FRACTION = 0.05
SPLIT_SEED = 0


@dataclass
class DigitImages:
    """images: (N, 1, 8, 8) float32 in [0, 1]; digits: (N,) int, 0..9."""

    images: np.ndarray
    digits: np.ndarray


def split_digits() -> "tuple[DigitImages, DigitImages]":
    """Stratified (train, test) split of all 1797 digits, the same on every call."""
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]   # pixel values run 0..16
    train_x, test_x, train_y, test_y = train_test_split(
        images, bunch.target, test_size=TEST_FRACTION, stratify=bunch.target,
        random_state=SPLIT_SEED)
    return DigitImages(train_x, train_y), DigitImages(test_x, test_y)


def make_long_tailed(train: DigitImages, rare_classes: Sequence[int] = RARE_CLASSES,
                     kept_fraction: float = RARE_KEPT_FRACTION, seed: int = SPLIT_SEED) -> DigitImages:
    """Keep only kept_fraction (at least 2) of each rare class's training images, all of the
    others; shuffled, because HDF5Data reads in file order (its own shuffle is not seeded)."""
    rng = np.random.default_rng(seed)
    keep = []
    for digit in range(NUM_CLASSES):
        members = np.flatnonzero(train.digits == digit)
        if digit in rare_classes:
            members = rng.choice(members, max(2, round(kept_fraction * len(members))), replace=False)
        keep.append(members)
    order = rng.permutation(np.concatenate(keep))
    return DigitImages(train.images[order], train.digits[order])


def one_hot(digits: np.ndarray) -> np.ndarray:
    """(N,) digits 0..9 -> (N, 10) float32 per-class targets, the label form both
    SigmoidCrossEntropyLoss and FocalLossLayer (form a) take."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[digits]


def digits_datasets(data: DigitImages) -> dict:
    """HDF5 datasets for the digits nets: data (N, 1, 8, 8), target (N, 10), digit (N,) kept
    for evaluation (no net reads it)."""
    return {"data": data.images, "target": one_hot(data.digits), "digit": data.digits}
