"""Example 1: long-tailed one-vs-all classification of scikit-learn's 8×8 digits.

Training keeps 5% of the images of classes 3, 5 and 8 and all of the others; the held-out test
split is balanced. Scored by per-class average precision on the test split, the mean over all
classes (mAP), and the means over the rare and over the common classes.
"""
import os
from typing import Dict

import numpy as np

from ..common.evaluation import deploy_outputs, per_class_average_precision
from ..common.hdf5_files import read_hdf5, write_hdf5_source
from .data import (
    NUM_CLASSES,
    RARE_CLASSES,
    RARE_KEPT_FRACTION,
    digits_datasets,
    make_long_tailed,
    split_digits,
)

NAME = "digits"
TITLE = "digits: long-tailed one-vs-all classification"
# Quick mode (tests): a short schedule, tested at 0, half-way and at the end.
QUICK_SOLVER = {"max_iter": 300, "test_interval": 150}


def write_data(data_dir: str) -> Dict:
    """Write data_dir/{train,test}.{h5,txt}; return counts for the report."""
    train, test = split_digits()
    long_tailed = make_long_tailed(train)
    write_hdf5_source(data_dir, "train", digits_datasets(long_tailed))
    write_hdf5_source(data_dir, "test", digits_datasets(test))
    per_class = np.bincount(long_tailed.digits, minlength=NUM_CLASSES)
    return {"train_images": int(len(long_tailed.digits)), "test_images": int(len(test.digits)),
            "train_images_per_class": per_class.tolist(), "rare_classes": list(RARE_CLASSES),
            "rare_kept_fraction": RARE_KEPT_FRACTION,
            "rare_share_of_training": float(per_class[list(RARE_CLASSES)].sum() / per_class.sum())}


def describe(data: Dict) -> str:
    rare = ", ".join(f"{c}: {data['train_images_per_class'][c]}" for c in data["rare_classes"])
    return (f"{data['train_images']} training images, rare classes kept at "
            f"{data['rare_kept_fraction']:.0%} ({rare} images); {data['test_images']} test images")


def evaluate(data_dir: str, deploy: str, weights: str) -> Dict:
    """Per-class AP of the deploy net with these weights on the test split."""
    test = read_hdf5(os.path.join(data_dir, "test.txt"))
    scores = deploy_outputs(deploy, weights, test["data"])
    ap = per_class_average_precision(scores, test["target"] > 0.5)
    common = [c for c in range(NUM_CLASSES) if c not in RARE_CLASSES]
    return {"ap_per_class": ap.tolist(), "mAP": float(ap.mean()),
            "rare_AP": float(ap[list(RARE_CLASSES)].mean()), "common_AP": float(ap[common].mean())}
