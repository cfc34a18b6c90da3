"""The check's SSD rows: MultiBoxFocalLossLayer at focusing_parameter 0 against C++ MultiBoxLoss
in the same net shapes, where the Caffe it imports has MultiBoxLoss (the SSD fork and its kin;
BVLC master has none: one skipped row says so). Loss and both gradients, on random SSD-shaped
inputs (focal_loss_layer.check.multibox_nets), for the confidence losses and mining types SSD
nets use."""
import numpy as np

from .multibox_nets import multibox_net, random_inputs, run_multibox
from .report import SKIP, Row, measured, run_row

GROUP = "MultiBoxFocalLossLayer"
PRIORS, CLASSES = 120, 5
LIMIT = 1e-4           # C++ sums its loss sequentially in float32
CASES = [   # (row name, settings, images)
    ("vs MultiBoxLoss: SOFTMAX, MAX_NEGATIVE (SSD's default)", {}, 4),
    ("vs MultiBoxLoss: LOGISTIC, MAX_NEGATIVE, BIPARTITE, CENTER_SIZE",
     {"conf_loss_type": "LOGISTIC", "match_type": "BIPARTITE", "code_type": "CENTER_SIZE"}, 4),
    ("vs MultiBoxLoss: SOFTMAX, NONE, normalization FULL",
     {"mining_type": "NONE", "normalization": "FULL"}, 4),
    # C++ misplaces LOGISTIC targets after the first image without mining: one image
    ("vs MultiBoxLoss: LOGISTIC, NONE (one image)",
     {"conf_loss_type": "LOGISTIC", "mining_type": "NONE"}, 1),
]
ADVICE = ("MultiBoxFocalLossLayer disagrees with this Caffe's MultiBoxLoss at focusing_parameter "
          "0: if this Caffe's MultiBoxLoss is patched, compare its source with SSD's "
          "bbox_util.cpp; otherwise reinstall focal_loss_layer and report this output")


def rows(layer_types, module):
    """The rows, or one skipped row when this Caffe's layer types (caffe.layer_type_list())
    lack MultiBoxLoss, or the layer module (the check's --module) lacks the layer."""
    if "MultiBoxLoss" not in layer_types:
        return [Row(GROUP, "vs MultiBoxLoss", "-", f"{SKIP}: this Caffe has no MultiBoxLoss",
                    "MultiBoxLoss is SSD's layer (weiliu89/caffe and its forks); the layer "
                    "itself runs in any Caffe with the Python layer")]
    if not hasattr(module, GROUP):
        return [Row(GROUP, "vs MultiBoxLoss", "-",
                    f"{SKIP}: {module.__name__} has no MultiBoxFocalLossLayer",
                    "the --module given has no SSD layer to certify")]
    module = module.__name__
    return [run_row(GROUP, name, lambda s=settings, n=num, t=name: _row(t, s, n, module), ADVICE)
            for name, settings, num in CASES]


def _row(name: str, settings: dict, num: int, module: str) -> Row:
    settings = dict(settings, num_classes=CLASSES)
    inputs = random_inputs(np.random.default_rng(num), num, PRIORS, CLASSES)
    rows = inputs[3].shape[2]
    cpp = run_multibox(multibox_net(num, PRIORS, CLASSES, rows, settings, python=False), inputs)
    ours = run_multibox(multibox_net(num, PRIORS, CLASSES, rows,
                                     dict(settings, focusing_parameter=0), python=True,
                                     module=module), inputs)
    errors = {"loss": abs(ours[0] - cpp[0]) / max(abs(cpp[0]), 1e-30)}
    for k, what in ((1, "loc grad"), (2, "conf grad")):
        errors[what] = float(np.abs(ours[k] - cpp[k]).max() / max(np.abs(cpp[k]).max(), 1e-30))
    return measured(GROUP, name, errors, LIMIT, ADVICE)
