"""HardNegativeLossLayer: the OHEM arm of the focal-loss paper's Table 1d for RetinaNet-lite —
sigmoid cross-entropy (γ = 0, no α) over every positive anchor and the hardest negatives of each
image, mined across all pyramid levels at once. In a prototxt (L levels, here 3):

    layer { name: "cls_loss"  type: "Python"
            bottom: "cls_score_p2"  bottom: "cls_score_p3"  bottom: "cls_score_p4"
            bottom: "labels_p2"  bottom: "labels_p3"  bottom: "labels_p4"  bottom: "positives"
            top: "cls_loss"
            python_param { module: "examples.detector.ohem_layer"  layer: "HardNegativeLossLayer"
              param_str: "{'num_anchors': 9, 'neg_pos_ratio': 3, 'ignore_label': -1}" }
            loss_weight: 1 }

Bottoms: L logits blobs, then L label blobs, then one normalizer blob (2L + 1 in all):
    bottom[l]      cls_score of level l, (N, A·C, H_l, W_l) float32; channel a·C + c holds the
                   logit of anchor a, class c (examples.detector.prototxt's layout)
    bottom[L + l]  labels of level l, (N, A, H_l, W_l): 0 background, 1..C the class (logit
                   channel label − 1), ignore_label (default −1) neither positive nor negative
    bottom[2L]     the number of positive anchors in the batch: one value (Reduction SUM's ())
top[0]: the loss, a scalar of shape () as Caffe's own loss layers give.
Settings: num_anchors A (default 1), neg_pos_ratio (default 3), ignore_label (default −1).

The loss. Per anchor, with x its C logits and t its targets (1 on its class for a positive, 0 on
every other class, all 0 for a negative),

    ℓ(anchor) = Σ_c BCE(x_c, t_c) = Σ_c [t_c·softplus(−x_c) + (1 − t_c)·softplus(x_c)],

computed from softplus (no log of a rounded σ) in float32 and summed over classes in float64.
Per image n: P_n its positive anchors (label ≥ 1) over all levels; its candidates the anchors
labelled 0 over all levels (ignored anchors never are); its hard negatives H_n the
int(|P_n| × neg_pos_ratio) candidates of highest ℓ, picked by
focal_loss_layer.multibox.mine_hard_negatives from the image's per-anchor losses concatenated
level after level (each level in its label blob's (A, H, W) order, which breaks ties). Then

    loss = Σ_n Σ_{anchor ∈ P_n ∪ H_n} ℓ(anchor) / max(normalizer, 1)
    ∂loss/∂x_c = (σ(x_c) − t_c) / max(normalizer, 1) on the C logits of a selected anchor, else 0.

Why this is Table 1d's OHEM: the paper trains its OHEM baselines with plain cross-entropy and
builds each image's minibatch from the highest-loss examples, its "OHEM 1:3" variant (SSD's)
keeping every positive and three times as many negatives; here an image keeps all its positives
and its 3× hardest negatives wherever they lie in the pyramid, ignored anchors take no part, and
the sum is divided by the positives as the focal-loss arms' is — so the arms differ in how easy
negatives are handled (thrown away here, down-weighted by γ there) and in α (none here), as in
the paper. The paper's
OHEM also suppresses overlapping examples by NMS before ranking; this layer, as SSD's
MAX_NEGATIVE, does not.

The diff contract of the package's layers (focal_loss_layer.layer): reshape reads shapes only and
makes a float32 gradient buffer per level; forward computes the loss and its gradient and keeps
the gradient; backward writes top[0].diff (the loss_weight) × that gradient into the logits'
diff of each level where propagate_down asks, zeros into a label or normalizer diff where Caffe
asks (force_backward), and touches no other diff. The gradient is forward's whatever rewrites the
logits in between, as Caffe's own losses keep theirs.
"""
import math

import numpy as np

from focal_loss_layer.errors import InputError, ParamError
from focal_loss_layer.fast import check_finite
from focal_loss_layer.labels import INDICES, check_labels
from focal_loss_layer.layer import blob_shape
from focal_loss_layer.multibox import mine_hard_negatives
from focal_loss_layer.params import (
    FLT_MAX,
    INT32_MAX,
    INT32_MIN,
    checked_integer,
    finite_float,
    read_param_mapping,
    short_repr,
)
from focal_loss_layer.pycaffe import import_caffe, layer_param_str

caffe = import_caffe("examples.detector.ohem_layer")

DEFAULTS = {"num_anchors": 1, "neg_pos_ratio": 3, "ignore_label": -1}


def parse_ohem_param_str(param_str: str) -> dict:
    """The settings {num_anchors, neg_pos_ratio, ignore_label} from param_str (a Python dict
    literal or JSON object, read as literals only: never eval), defaults for keys not given.
    ParamError naming the key and what it allows for an unknown key or a bad value."""
    raw = read_param_mapping(param_str)
    unknown = [key for key in raw if key not in DEFAULTS]
    if unknown:
        raise ParamError(f"HardNegativeLossLayer: unknown param_str key {short_repr(unknown[0])}; "
                         f"allowed keys: {', '.join(DEFAULTS)}")
    settings = dict(DEFAULTS)
    if "num_anchors" in raw:
        settings["num_anchors"] = checked_integer(
            raw, "num_anchors", low=1,
            allowed=f"a whole number >= 1 and <= {INT32_MAX} (A anchors per position; logits "
                    "(N, A*C, H, W), labels (N, A, H, W))")
    if "ignore_label" in raw:
        settings["ignore_label"] = checked_integer(
            raw, "ignore_label", low=INT32_MIN,
            allowed=f"an integer in {INT32_MIN}..{INT32_MAX} (Caffe's int32), e.g. -1")
    if "neg_pos_ratio" in raw:
        value = raw["neg_pos_ratio"]
        ratio = finite_float(value)
        # float32's range: mine_hard_negatives multiplies in float32, and int(inf) fails.
        if ratio is None or not 0 < ratio <= FLT_MAX:
            raise ParamError(f"neg_pos_ratio = {short_repr(value)} is not allowed: neg_pos_ratio "
                             f"must be a finite number > 0 and <= {FLT_MAX:.7g} (negatives kept "
                             "per positive; the paper's OHEM 1:3 is 3)")
        settings["neg_pos_ratio"] = ratio
    return settings


class HardNegativeLossLayer(caffe.Layer):
    """OHEM sigmoid cross-entropy over the pyramid's anchors; see the module docstring."""

    def setup(self, bottom, top):
        if len(bottom) < 3 or len(bottom) % 2 == 0 or len(top) != 1:
            raise InputError(
                "HardNegativeLossLayer takes 2L + 1 bottoms (L >= 1 levels' logits, their L label "
                f"blobs, the normalizer) and 1 top (loss); got {len(bottom)} bottom(s) and "
                f"{len(top)} top(s)")
        self.settings = parse_ohem_param_str(layer_param_str(self))
        self.levels = (len(bottom) - 1) // 2
        self.shapes = None          # the bottoms' shapes the buffers below were made for
        self.gradients = []         # per level, ∂loss/∂logits of the last forward (float32)
        self.ready = False          # True once a forward completed: backward needs its gradient

    def reshape(self, bottom, top):
        # Indexed: pycaffe's bottom vector cannot be iterated.
        shapes = tuple(blob_shape(bottom[k]) for k in range(len(bottom)))
        if shapes != self.shapes:
            self._check_shapes(shapes)
            self.gradients = [np.zeros(shapes[l], np.float32) for l in range(self.levels)]
            self.shapes = shapes
            self.ready = False
        top[0].reshape()            # a scalar, shape (), as Caffe's LossLayer

    def _check_shapes(self, shapes):
        """InputError unless every level's logits are (N, A·C, H, W) with the same N and C, its
        labels (N, A, H, W), and the normalizer one value. Sets self.num_classes."""
        levels, anchors = self.levels, self.settings["num_anchors"]
        num_images, num_classes = None, None
        for l in range(levels):
            logits, labels = shapes[l], shapes[levels + l]
            if len(logits) != 4 or logits[1] == 0 or logits[1] % anchors:
                raise InputError(
                    f"bottom[{l}] (cls_score of level {l}) has shape {logits}; it must be (N, A*C, "
                    f"H, W) with num_anchors A = {anchors} and C >= 1 classes (channels a multiple "
                    "of A)")
            if num_images is None:
                num_images, num_classes = logits[0], logits[1] // anchors
            if (logits[0], logits[1] // anchors) != (num_images, num_classes):
                raise InputError(
                    f"bottom[{l}] (cls_score of level {l}) has shape {logits}: {logits[0]} images "
                    f"of {logits[1] // anchors} classes, but bottom[0] has {num_images} of "
                    f"{num_classes}; every level must have the same N and C")
            expected = (logits[0], anchors) + logits[2:]
            if labels != expected:
                raise InputError(
                    f"bottom[{levels + l}] (labels of level {l}) has shape {labels}; with "
                    f"bottom[{l}] of shape {logits} and num_anchors {anchors} it must be "
                    f"(N, A, H, W) = {expected}")
        normalizer = shapes[2 * levels]
        if math.prod(normalizer) != 1:
            raise InputError(f"bottom[{2 * levels}] (normalizer) has shape {normalizer}; it must "
                             "hold exactly one value (e.g. the top of a Reduction SUM)")
        self.num_classes = num_classes

    def forward(self, bottom, top):
        self.ready = False          # until this forward completes without an error
        levels, ignore_label = self.levels, self.settings["ignore_label"]
        anchors, classes = self.settings["num_anchors"], self.num_classes
        for l in range(levels):
            check_finite(bottom[l].data, f"bottom[{l}] (cls_score of level {l})")
            check_labels(bottom[levels + l].data, INDICES, classes, ignore_label,
                         where=f"bottom[{levels + l}] (labels of level {l})")
        divisor = max(1.0, self._normalizer(bottom))
        # Per level: the per-anchor loss (N, A·H·W), summed in float64, and σ(x) − t in the
        # logits' view (N, A, C, H·W); the anchors' labels (N, A·H·W). Cross-entropy only (γ = 0),
        # from one exp and one log1p per logit: −log(1 − σ(x)) = softplus(x), −log σ(x) =
        # softplus(−x), each without cancellation, and σ(x) = exp(−softplus(−x)).
        losses, gradients, labels = [], [], []
        class_ids = np.arange(1, classes + 1).reshape(1, 1, classes, 1)
        for l in range(levels):
            num = bottom[l].data.shape[0]
            x = bottom[l].data.reshape(num, anchors, classes, -1)
            label = bottom[levels + l].data.reshape(num, anchors, 1, -1)
            target = label == class_ids                      # (N, A, C, H·W)
            shared = np.log1p(np.exp(-np.abs(x)))
            minus_log_p = np.maximum(-x, 0) + shared
            terms = np.where(target, minus_log_p, np.maximum(x, 0) + shared)
            losses.append(terms.sum(axis=2, dtype=np.float64).reshape(num, -1))
            gradients.append(np.exp(-minus_log_p) - target)
            labels.append(label.reshape(num, -1))
        selected = self._select(np.concatenate(losses, axis=1), np.concatenate(labels, axis=1))
        # Back to levels: the selected anchors' columns in each level's (A·H·W) order.
        bounds = np.cumsum([loss.shape[1] for loss in losses])[:-1]
        total = 0.0
        for l, (loss, chosen) in enumerate(zip(losses, np.split(selected, bounds, axis=1))):
            total += float(loss[chosen].sum())
            keep = chosen.reshape(gradients[l].shape[:2] + (1, -1))
            self.gradients[l][...] = (np.where(keep, gradients[l], 0.0) / divisor).reshape(
                self.gradients[l].shape)
        loss = total / divisor
        if not loss <= FLT_MAX:
            raise InputError(
                f"the loss {loss:.7g} is beyond float32's range (the top would be non-finite): "
                f"the logits of bottom[0..{levels - 1}] (cls_score) are huge; the net diverged")
        top[0].data[...] = loss
        self.ready = True

    def _select(self, loss, labels):
        """(N, anchors of all levels) bool: per image its positives and its hard negatives.
        loss: the per-anchor losses, labels: the anchors' labels, both (N, anchors)."""
        ignored = labels == self.settings["ignore_label"]
        positive = (labels >= 1) & ~ignored
        candidate = (labels == 0) & ~ignored
        selected = positive.copy()
        for n in range(loss.shape[0]):
            # Shared with MultiBoxFocalLossLayer: one ranking rule for every mined loss here.
            hard = mine_hard_negatives(loss[n], candidate[n], int(np.count_nonzero(positive[n])),
                                       self.settings["neg_pos_ratio"])
            selected[n, hard] = True
        return selected

    def _normalizer(self, bottom):
        """bottom[2L]'s value; InputError unless finite and >= 0."""
        k = 2 * self.levels
        value = bottom[k].data.reshape(-1)[0].item()
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"bottom[{k}] (normalizer) is {value!r}; it must be a finite number "
                             ">= 0, such as the count of positive anchors (the loss is divided by "
                             "max(value, 1))")
        return value

    def backward(self, top, propagate_down, bottom):
        if not self.ready:
            raise RuntimeError("HardNegativeLossLayer.backward needs a forward that completed "
                               "first")
        # top[0].diff is the loss_weight Caffe assigns: honour it.
        loss_weight = np.float32(top[0].diff.reshape(-1)[0])
        for l in range(self.levels):
            if propagate_down[l]:
                np.multiply(self.gradients[l], loss_weight, out=bottom[l].diff)
        # Labels and the normalizer take no gradient; Caffe asks for one anyway under
        # force_backward (a Python layer cannot refuse it as C++ losses do): answer with zeros.
        for k in range(self.levels, 2 * self.levels + 1):
            if propagate_down[k]:
                bottom[k].diff[...] = 0
