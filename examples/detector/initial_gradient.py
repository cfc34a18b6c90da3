"""Each loss's value and gradient at the prior initialisation, on a real training batch's
anchors (a measurement; it does not by itself explain the trained nets' AP).

At the start every class logit is the prior bias b = -log((1 - pi) / pi). For the anchors of the
first TRAIN_BATCH training scenes (ignored anchors left out), this evaluates each loss and its
gradient with focal_loss_layer.core, divided by the batch's positive anchors as the nets do, and
reports the gradient's total size Σ|∂L/∂x| and the share of it that comes from negatives.

    python -m examples.detector.initial_gradient [DATA_DIR]   # default results/data/detector
"""
import os
import sys
from typing import Dict

import h5py
import numpy as np

from focal_loss_layer.core import sigmoid_focal_loss_and_gradient

from .anchors import LEVELS
from .prototxt import LOSSES, PRIOR_BIAS, REPO, TRAIN_BATCH
from .scenes import NUM_CLASSES


def batch_targets(labels: Dict[str, np.ndarray]) -> "tuple[np.ndarray, np.ndarray]":
    """Per-level index labels {"labels_<l>": (N, A, H, W)} -> per-class targets (M, C) and the
    valid mask (M, C) over all anchors of all levels (ignored anchors are invalid)."""
    flat = np.concatenate([labels[f"labels_{l.name}"].reshape(-1) for l in LEVELS])
    targets = (flat[:, None] == np.arange(1, NUM_CLASSES + 1)[None, :]).astype(np.float64)
    valid = np.broadcast_to((flat >= 0)[:, None], targets.shape)
    return targets, valid


def initial_gradients(labels: Dict[str, np.ndarray]) -> Dict[str, Dict[str, float]]:
    """{loss key: {"loss", "gradient_sum", "negative_share"}} at the prior logits, for the arms
    whose loss is a FocalLossLayer."""
    targets, valid = batch_targets(labels)
    logits = np.full(targets.shape, PRIOR_BIAS)
    out = {}
    for key, loss in LOSSES.items():
        if loss["layer"] != "FocalLossLayer":   # OHEM's selection needs the logits of a net
            continue
        value, gradient = sigmoid_focal_loss_and_gradient(logits, targets, valid=valid,
                                             normalization="positives", **loss["param"])
        size = np.abs(gradient)
        out[key] = {"loss": float(value), "gradient_sum": float(size.sum()),
                    "negative_share": float(size[(targets == 0) & valid].sum() / size.sum())}
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    data_dir = argv[0] if argv else os.path.join(REPO, "results", "data", "detector")
    source = os.path.join(data_dir, "train.txt")
    if not os.path.exists(source):
        print(f"python -m examples.detector.initial_gradient: error: {source} does not exist; "
              "run `make example` first (it writes the detector's data there), or pass the folder "
              "that holds train.txt", file=sys.stderr)
        return 2
    with open(source) as f:
        h5_path = f.readline().strip()
    with h5py.File(h5_path, "r") as f:
        labels = {f"labels_{l.name}": f[f"labels_{l.name}"][:TRAIN_BATCH] for l in LEVELS}
        positives = int(f["num_positives"][:TRAIN_BATCH].sum())
    print(f"first training batch ({TRAIN_BATCH} scenes, {positives} positive anchors), every "
          f"class logit at the prior bias {PRIOR_BIAS:.4f}, divided by the positives:")
    results = initial_gradients(labels)
    for key, numbers in results.items():
        share = 100 * numbers["negative_share"]
        print(f"  {LOSSES[key]['label']:<18} loss {numbers['loss']:8.4f}   Σ|∂L/∂x| "
              f"{numbers['gradient_sum']:8.4f}   from negatives {share:5.1f}%")
    ratio = results["ce"]["gradient_sum"] / results["focal"]["gradient_sum"]
    print(f"  cross-entropy's gradient is {ratio:.0f}x focal loss's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
