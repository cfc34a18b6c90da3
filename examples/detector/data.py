"""The detector's HDF5 files: scenes and their per-anchor targets for train / val / test.

data_dir/{split}.h5 holds, all float32 (HDF5Data reads float32 and float64 only):

    data (N, 1, CANVAS, CANVAS), labels_<l>, box_targets_<l>, num_positives
        the tops the nets read (see targets.py)
    gt_boxes (N, MAX_OBJECTS, 4), gt_classes (N, MAX_OBJECTS)
        the scorer's ground truth, class 0 = padding (no net reads them)

and data_dir/{split}.txt lists it (HDF5Data's source).
"""
import os
from typing import Dict

import h5py
import numpy as np

from ..common.hdf5_files import write_hdf5_source
from .anchor_stats import anchor_statistics, flat_labels
from .scenes import (
    CANVAS,
    INK,
    MAX_DIGITS,
    NUM_CLASSES,
    Scenes,
    make_scenes,
    padded_ground_truth,
    split_sources,
    unpadded_ground_truth,
)
from .targets import anchors_per_image, dataset_targets

SPLITS = ("train", "val", "test")
# One scene seed per split, and each split draws from its own source digits.
SEEDS = {"train": 11, "val": 12, "test": 13}
MAX_OBJECTS = MAX_DIGITS


def write_data(data_dir: str, counts: Dict[str, int]) -> Dict:
    """Write data_dir/{split}.{h5,txt} for counts {split: scenes}; return statistics for the
    report (counts, anchors per image, positives, ignored and background shares, and
    examples.detector.anchor_stats' negatives per positive and blank negative anchors)."""
    sources = split_sources()
    stats = {"anchors_per_image": anchors_per_image(CANVAS),
             "source_digits": {split: int(len(sources[split].digits)) for split in SPLITS}}
    for split in SPLITS:
        scenes = make_scenes(sources[split], counts[split], SEEDS[split])
        datasets = split_datasets(scenes)
        write_hdf5_source(data_dir, split, datasets)
        labels = flat_labels(datasets)
        stats[split] = {
            "scenes": int(counts[split]),
            "objects": int(sum(len(b) for b in scenes.boxes)),
            "positives_per_image": float(datasets["num_positives"].mean()),
            "positive_anchor_share": float((labels > 0).mean()),
            "ignored_anchor_share": float((labels < 0).mean()),
            # Class logits: each anchor has C of them; a positive anchor has one positive logit.
            "positive_logit_share": float((labels > 0).mean() / NUM_CLASSES),
            "anchors": anchor_statistics(scenes.images, labels, INK),
        }
    return stats


def split_datasets(scenes: Scenes) -> Dict[str, np.ndarray]:
    """Everything one split's HDF5 file holds (see the module docstring)."""
    datasets = {"data": scenes.images}
    datasets.update(dataset_targets(scenes.images, scenes.boxes, scenes.classes))
    datasets["gt_boxes"], datasets["gt_classes"] = padded_ground_truth(scenes, MAX_OBJECTS)
    return datasets


def read_split(data_dir: str, split: str) -> "tuple[np.ndarray, list, list]":
    """(images (N, 1, S, S), per-image boxes (G_i, 4), per-image classes (G_i,)) of a split."""
    with open(os.path.join(data_dir, f"{split}.txt")) as f:
        h5_path = f.readline().strip()
    # Only what scoring needs: the per-anchor targets are most of the file.
    with h5py.File(h5_path, "r") as f:
        images, gt_boxes, gt_classes = (f[name][...] for name in ("data", "gt_boxes", "gt_classes"))
    boxes, classes = unpadded_ground_truth(gt_boxes, gt_classes)
    return images, boxes, classes
