"""`make bench`, the SSD section: MultiBoxFocalLossLayer against Caffe's C++ MultiBoxLoss on SSD300's
shapes (8,732 priors, 21 classes), batches of 8 and 32 images with about 5 boxes each, in one net
on the same bottoms, turn about (benchmarks.timing); medians of forward+backward.

Rows: C++ MultiBoxLoss as SSD ships it (softmax, MAX_NEGATIVE 3:1); this layer with the same
settings at γ = 0 (the drop-in); this layer as focal loss is meant to run (LOGISTIC, no mining,
γ = 2, α = 0.25). Target: the drop-in at most 1.5× the C++ layer's time.
"""
import numpy as np

from focal_loss_layer.check.multibox_nets import multibox_inputs, multibox_loss, random_inputs
from focal_loss_layer.check.nets import load_net

from .timing import time_layers

PRIORS, CLASSES = 8732, 21
BATCHES = (8, 32)
QUICK_PRIORS, QUICK_BATCHES = 200, (2,)
TARGET = 1.5
SSD = {"num_classes": CLASSES, "normalization": "VALID"}
ROWS = [
    ("cpp", "MultiBoxLoss (Caffe C++), softmax, MAX_NEGATIVE 3:1", SSD, False),
    ("drop_in", "MultiBoxFocalLossLayer, same settings, γ=0", dict(SSD, focusing_parameter=0),
     True),
    ("focal", "MultiBoxFocalLossLayer LOGISTIC, no mining, γ=2 α=0.25",
     dict(SSD, conf_loss_type="LOGISTIC", mining_type="NONE", focusing_parameter=2,
          alpha=0.25), True),
]


def lines(quick: bool):
    """The section's table and target lines."""
    priors, batches = (QUICK_PRIORS, QUICK_BATCHES) if quick else (PRIORS, BATCHES)
    repeats = 3 if quick else 15
    out = [f"MultiBoxFocalLossLayer against Caffe's MultiBoxLoss, {priors} priors, {CLASSES} "
           f"classes, about 5 boxes per image; forward+backward of each loss layer alone, "
           f"medians of {repeats} runs, ms"]
    for num in batches:
        inputs = random_inputs(np.random.default_rng(num), num, priors, CLASSES,
                               boxes_per_image=(3, 7))
        text = multibox_inputs(num, priors, CLASSES, inputs[3].shape[2]) + "".join(
            multibox_loss(name, settings, python) for name, _, settings, python in ROWS)
        net = load_net(text, cpu=True)
        loc, conf, prior_data, labels = inputs
        net.params["mbox_loc"][0].data[...] = loc
        net.params["mbox_conf"][0].data[...] = conf
        net.blobs["mbox_priorbox"].data[...] = prior_data
        net.blobs["label"].data[...] = labels
        # Once whole: the Split layers Caffe put between the bottoms and the three losses copy
        # them only in their own forward, which timing the losses alone would never run.
        net.forward()
        times = time_layers(net, [name for name, *_ in ROWS], repeats)
        reference = times["cpp"][2]
        out.append(f"  batch {num}:")
        for name, title, _, _ in ROWS:
            out.append(f"    {title:<58} {times[name][2] * 1e3:8.1f}   "
                       f"{times[name][2] / reference:5.2f}× C++")
        ratio = times["drop_in"][2] / reference
        out.append(f"target multibox batch {num}: ours/MBL {ratio:.2f} ≤ {TARGET:g}: "
                   f"{'met' if ratio <= TARGET else 'NOT MET'}")
    return out
