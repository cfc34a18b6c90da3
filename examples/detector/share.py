"""The paper's Figure 4 on the detector's anchors: a trained net's class logits on test images,
every non-ignored anchor's C logits taken as samples (positive for the anchor's class, negative
for the others), their focal losses at several γ sorted and accumulated by
examples.common.loss_share."""
import os
from typing import Dict

import h5py
import numpy as np

from ..common.loss_share import loss_share_analysis
from .anchors import LEVELS
from .inference import deploy_outputs
from .prototxt import NUM_CLASSES


def anchor_logits(outputs: Dict[str, np.ndarray], labels: Dict[str, np.ndarray],
                  num_classes: int = NUM_CLASSES) -> "tuple[np.ndarray, np.ndarray]":
    """Per-level logits {"cls_score_<l>": (N, A*C, H, W)} and labels {"labels_<l>": (N, A, H, W)}
    -> scores (M, C) and positives (M, C) bool over the M non-ignored anchors of all levels."""
    scores, positives = [], []
    for level in LEVELS:
        logits = outputs[f"cls_score_{level.name}"]
        count, _, height, width = logits.shape
        # (N, A*C, H, W) -> (N, A, C, H, W) -> (N, A, H, W, C) -> (N*A*H*W, C): rows follow labels.
        rows = logits.reshape(count, -1, num_classes, height, width).transpose(0, 1, 3, 4, 2) \
            .reshape(-1, num_classes)
        anchor_labels = labels[f"labels_{level.name}"].reshape(-1)
        kept = anchor_labels >= 0
        scores.append(rows[kept])
        positives.append(anchor_labels[kept, None] == np.arange(1, num_classes + 1)[None, :])
    return np.concatenate(scores), np.concatenate(positives)


def anchor_loss_share(deploy: str, weights: str, data_dir: str, images: int) -> Dict:
    """loss_share_analysis of the net's logits on the first `images` test scenes."""
    with open(os.path.join(data_dir, "test.txt")) as f:
        h5_path = f.readline().strip()
    with h5py.File(h5_path, "r") as f:
        data = f["data"][:images]
        labels = {f"labels_{l.name}": f[f"labels_{l.name}"][:images] for l in LEVELS}
    scores, positives = anchor_logits(deploy_outputs(deploy, weights, data), labels)
    analysis = loss_share_analysis(scores, positives)
    analysis["images"] = int(len(data))
    return analysis
