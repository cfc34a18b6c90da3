"""What the data layer needs, in numpy alone (the `caffe` tool's embedded Python runs it: no
h5py, scikit-learn or scikit-image here): reading a split's npz file (examples.ssd.data writes
it), SSD's label rows for a batch, and the order of the batches.

A split's npz file holds

    images  (N, 1, S, S) float32 in [0, 1]
    image   (M,) int32      the scene of each object, 0..N-1
    classes (M,) int32      1..10 (digit + 1; 0 is SSD's background_label_id)
    boxes   (M, 4) float32  (x1, y1, x2, y2) in pixels, x2 and y2 exclusive, as the scenes'
"""
import os
from typing import Dict, List, Tuple

import numpy as np

LABEL_ROW = 8       # [image id, class, instance id, xmin, ymin, xmax, ymax, difficult]
NO_BOX = np.full((1, LABEL_ROW), -1, np.float32)   # SSD's row for a batch without any box
ARRAYS = ("images", "image", "classes", "boxes")


def path_of(data_dir: str, split: str) -> str:
    return os.path.join(data_dir, f"{split}.npz")


def read_split(path: str) -> Dict[str, np.ndarray]:
    """The arrays of one npz file (module docstring), checked for consistency."""
    with np.load(path) as f:
        split = {name: f[name] for name in ARRAYS}
    images = split["images"]
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"{path}: images have shape {images.shape}, not (N, 1, S, S)")
    count = len(split["image"])
    if not (len(split["classes"]) == len(split["boxes"]) == count) or \
            (count and not 0 <= split["image"].min() <= split["image"].max() < len(images)):
        raise ValueError(f"{path}: image, classes and boxes disagree")
    return split


def ground_truth(split: Dict[str, np.ndarray]) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Per scene, boxes (G_i, 4) in pixels and classes (G_i,): what the COCO scorer takes."""
    scenes = range(len(split["images"]))
    return ([split["boxes"][split["image"] == i] for i in scenes],
            [split["classes"][split["image"] == i].astype(np.int64) for i in scenes])


def label_rows(split: Dict[str, np.ndarray], scenes: np.ndarray) -> np.ndarray:
    """SSD's label rows (G, 8) float32 for a batch of the split's scenes (their indices, in batch
    order): image id = position in the batch, instance id = the object's index within its
    scene, coordinates normalised by the image's width (x) and height (y), difficult 0. One row
    of -1s when none of the scenes has a box."""
    height, width = split["images"].shape[2:]
    scale = np.array([width, height, width, height], np.float32)
    rows = [np.zeros((0, LABEL_ROW), np.float32)]
    for position, scene in enumerate(scenes):
        mine = np.flatnonzero(split["image"] == scene)
        block = np.zeros((len(mine), LABEL_ROW), np.float32)
        block[:, 0] = position
        block[:, 1] = split["classes"][mine]
        block[:, 2] = np.arange(len(mine))
        block[:, 3:7] = split["boxes"][mine] / scale
        rows.append(block)
    rows = np.concatenate(rows)
    return rows if len(rows) else NO_BOX.copy()


def batch_scenes(count: int, batch_size: int, batch_number: int, shuffle: bool,
                 seed: int) -> np.ndarray:
    """The scene indices of the batch_number-th batch (0, 1, ...): consecutive slices of an
    endless sequence of epochs, epoch e in the order np.random.default_rng([seed, e])
    .permutation(count) (shuffle) or 0..count-1. A pure function of its arguments, so that both
    arms of the example, and any rerun, see the same batches."""
    positions = batch_number * batch_size + np.arange(batch_size)
    epochs, within = np.divmod(positions, count)
    out = np.empty(batch_size, np.int64)
    for epoch in np.unique(epochs):
        order = (np.random.default_rng([seed, int(epoch)]).permutation(count) if shuffle
                 else np.arange(count))
        out[epochs == epoch] = order[within[epochs == epoch]]
    return out
