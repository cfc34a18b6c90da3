"""Example 2: dense per-cell prediction on canvases of digits, where background dominates.

Scored by per-class average precision over the test canvases' non-ignored cells (a cell is
positive for class c when a digit c is centred in it), and by the paper's Figure 4 analysis of
the trained net's outputs (examples.common.loss_share).

Besides the sigmoid runs (examples.common.losses.LOSSES), two softmax runs (EXTRA_LOSSES): one softmax
over 11 classes per cell, background or a digit, with SoftmaxFocalLossLayer and with Caffe's
SoftmaxWithLoss. A digit class is scored by its log-probability there.
"""
import os
from typing import Dict

import numpy as np

from ..common.evaluation import cells_as_samples, deploy_outputs, per_class_average_precision
from ..common.hdf5_files import read_hdf5, write_hdf5_source
from ..common.loss_share import loss_share_analysis, softmax_loss_share_analysis
from ..common.losses import SOFTMAX_LOSSES
from ..digits.data import NUM_CLASSES, split_digits
from .data import GRID, grid_datasets, positive_share

NAME = "digit_grid"
TITLE = "digit_grid: dense per-cell prediction, extreme imbalance"
TRAIN_CANVASES, TEST_CANVASES = 2000, 400
# Canvases of the two splits use different seeds, and the digits of the matching split.
TRAIN_SEED, TEST_SEED = 1, 2
QUICK_SOLVER = {"max_iter": 120, "test_interval": 60}
EXTRA_LOSSES = tuple(SOFTMAX_LOSSES)


def write_data(data_dir: str) -> Dict:
    """Write data_dir/{train,test}.{h5,txt}; return counts for the report."""
    train_digits, test_digits = split_digits()
    counts = {}
    for split, digits, count, seed in (("train", train_digits, TRAIN_CANVASES, TRAIN_SEED),
                                       ("test", test_digits, TEST_CANVASES, TEST_SEED)):
        datasets = grid_datasets(digits, count, seed)
        write_hdf5_source(data_dir, split, datasets)
        counts[f"{split}_canvases"] = count
        counts[f"{split}_positive_share"] = positive_share(datasets["label"])
        counts[f"{split}_ignored_cell_share"] = float((datasets["label"] < 0).mean())
    counts["grid"] = GRID
    return counts


def describe(data: Dict) -> str:
    return (f"{data['train_canvases']} training and {data['test_canvases']} test canvases, "
            f"{data['grid']}x{data['grid']} cells x 10 classes; positives 1 in "
            f"{1 / data['train_positive_share']:.0f} class logits")


def evaluate(data_dir: str, deploy: str, weights: str) -> Dict:
    """Per-class AP over non-ignored test cells, and the loss-share analysis of the outputs. A
    softmax net (11 outputs, class 0 background) scores digit c by log p_c, and its loss share
    is of its per-cell softmax loss."""
    test = read_hdf5(os.path.join(data_dir, "test.txt"))
    logits = deploy_outputs(deploy, weights, test["data"], batch_size=50)
    if logits.shape[1] == NUM_CLASSES + 1:
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        scores, positives = cells_as_samples(log_p[:, 1:], test["label"])
        cells, _ = cells_as_samples(logits, test["label"])
        labels = test["label"].reshape(-1)
        loss_share = softmax_loss_share_analysis(cells, labels[labels >= 0].astype(int))
    else:
        scores, positives = cells_as_samples(logits, test["label"])
        loss_share = loss_share_analysis(scores, positives)
    ap = per_class_average_precision(scores, positives)
    return {"ap_per_class": ap.tolist(), "mAP": float(ap.mean()), "loss_share": loss_share}
