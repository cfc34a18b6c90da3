"""MultiBoxFocalLossLayer: SSD's MultiBoxLoss as a Python layer, with focal loss as its confidence
loss. A drop-in for `type: "MultiBoxLoss"` in an SSD net, needing no rebuild of Caffe:

    layer { name: "mbox_loss" type: "Python"
            bottom: "mbox_loc" bottom: "mbox_conf" bottom: "mbox_priorbox" bottom: "label"
            top: "mbox_loss"
            python_param { module: "focal_loss_layer" layer: "MultiBoxFocalLossLayer"
                           param_str: "{'num_classes': 21, 'conf_loss_type': 'LOGISTIC',
                                        'mining_type': 'NONE', 'focusing_parameter': 2}" }
            loss_weight: 1  propagate_down: true  propagate_down: true
            propagate_down: false  propagate_down: false }

bottom[0] mbox_loc (N, P·4); bottom[1] mbox_conf (N, P·C), prior p's classes at p·C .. p·C + C−1;
bottom[2] mbox_priorbox (1, 2, P·4): the priors' boxes, then their variances; bottom[3] the
label blob (1, 1, G, 8), rows [image id, class, instance id, xmin, ymin, xmax, ymax, difficult];
top[0] the loss, shape (1,). Settings: focal_loss_layer.multibox_params.

Per image, the priors are matched to the boxes (multibox.match_priors); a matched prior is a
positive of its box's class, the others negatives. With mining MAX_NEGATIVE only the
int(positives × neg_pos_ratio) negatives of highest confidence loss count, each with the
background as its class (multibox.mine_hard_negatives; with γ > 0 ranked by their focal loss);
with NONE every prior counts. Then

    loss = (loc_weight · Σ_matched smoothL1(loc − encoded box) + Σ_counted conf loss) / normalizer

with the conf loss the softmax focal loss (SOFTMAX; its class weights a_y = α for the object
classes, 1 − α for the background) or the sigmoid focal loss over all C channels (LOGISTIC;
target 1 on a positive's class and, for a mined negative, on the background channel; α on the
positive terms, 1 − α on the negative ones), computed by the other layers' kernels. The
normalizer is LossParameter's: VALID the matched priors, FULL N·P, BATCH_SIZE N, NONE 1, at
least 1. At focusing_parameter 0 this is C++ MultiBoxLoss (tests/test_multibox_twin.py),
except LOGISTIC without mining, where C++ places the targets of every image after the first at
the wrong priors (docs/ssd.md) and this layer does not.

Exact by construction, as the package's other layers: forward computes the loss and both
gradients and keeps them (two float32 buffers the sizes of mbox_loc and mbox_conf); backward
scales them into the diffs where propagate_down asks, and writes nothing else. Unlike C++
MultiBoxLoss, which leaves a term out of its loss when the prototxt's propagate_down says false
for its bottom, the loss always holds both terms (a Python layer cannot see that setting).
"""
import math

import numpy as np

from . import multibox
from .errors import InputError
from .fast import FocalLossKernel, check_finite
from .layer import blob_shape
from .multibox_params import parse_multibox_param_str
from .params import FLT_MAX, FocalLossParams, SoftmaxFocalLossParams
from .pycaffe import import_caffe, layer_param_str
from .softmax_fast import SoftmaxFocalLossKernel

caffe = import_caffe("MultiBoxFocalLossLayer")

IGNORE = -1.0       # the conf kernels' ignore_label: priors that do not count


class MultiBoxFocalLossLayer(caffe.Layer):
    """SSD's MultiBoxLoss with a focal confidence loss; see the module docstring."""

    def setup(self, bottom, top):
        if len(bottom) != 4 or len(top) != 1:
            raise InputError(
                "MultiBoxFocalLossLayer takes 4 bottoms (mbox_loc, mbox_conf, mbox_priorbox, "
                f"label) and 1 top (loss), as MultiBoxLoss; got {len(bottom)} bottom(s) and "
                f"{len(top)} top(s)")
        self.params = parse_multibox_param_str(layer_param_str(self))
        self.shapes = None

    def reshape(self, bottom, top):
        # Not the label blob's: its box count changes from batch to batch (read in forward).
        shapes = tuple(blob_shape(bottom[k]) for k in range(3))
        if shapes != self.shapes:
            self._plan(*shapes)
            self.shapes = shapes
        top[0].reshape(1)

    def _plan(self, loc_shape, conf_shape, prior_shape):
        """Checks the predictions' and priors' shapes; makes the conf kernel and the kept loc
        gradient."""
        classes = self.params.num_classes
        if (len(prior_shape) < 3 or math.prod(prior_shape[:-2]) != 1 or prior_shape[-2] != 2
                or prior_shape[-1] % 4):
            raise InputError(f"bottom[2] (mbox_priorbox) has shape {prior_shape}; it must be "
                             "(1, 2, P*4): the P priors' boxes, then their variances")
        priors = prior_shape[-1] // 4
        num = loc_shape[0]
        if math.prod(loc_shape[1:]) != priors * 4 or conf_shape[0] != num:
            raise InputError(f"bottom[0] (mbox_loc) has shape {loc_shape}; with {priors} priors "
                             f"it must be (N, {priors * 4}) and bottom[1] (N, {priors * classes})")
        if math.prod(conf_shape[1:]) != priors * classes:
            raise InputError(f"bottom[1] (mbox_conf) has shape {conf_shape}; with {priors} priors "
                             f"and num_classes {classes} it must be (N, {priors * classes})")
        self.num, self.priors = num, priors
        p = self.params
        weights = np.full(classes, 1.0 if p.alpha is None else p.alpha)
        if p.conf_loss_type == "SOFTMAX":
            if p.alpha is not None:
                weights[p.background_label_id] = 1.0 - p.alpha
            settings = SoftmaxFocalLossParams(
                focusing_parameter=p.focusing_parameter, class_balances=tuple(weights),
                ignore_label=int(IGNORE), normalization="none")
            self.conf_kernel = SoftmaxFocalLossKernel(settings, (num * priors, classes),
                                                      (num * priors,))
        else:
            settings = FocalLossParams(focusing_parameter=p.focusing_parameter, alpha=p.alpha,
                                       ignore_label=int(IGNORE), normalization="none")
            self.conf_kernel = FocalLossKernel(settings, (num * priors, classes),
                                               (num * priors, classes))
        self.loc_gradient = np.zeros((num, priors, 4), np.float32)
        self.normalizer = None

    def forward(self, bottom, top):
        p = self.params
        self.normalizer = None              # until this forward completes
        for k, name in ((0, "bottom[0] (mbox_loc)"), (1, "bottom[1] (mbox_conf)"),
                        (2, "bottom[2] (mbox_priorbox)")):
            check_finite(bottom[k].data, name)
        loc = bottom[0].data.reshape(self.num, self.priors, 4)
        conf = bottom[1].data.reshape(self.num, self.priors, p.num_classes)
        prior_data = bottom[2].data.reshape(2, self.priors, 4)
        boxes, variances = prior_data[0], prior_data[1]
        if not (variances > 0).all():
            index = int(np.argmax((variances <= 0).any(axis=1)))
            raise InputError(f"bottom[2] (mbox_priorbox) prior {index} has variances "
                             f"{variances[index].tolist()}; every variance must be > 0 (the "
                             "box code divides by it)")
        truth = multibox.read_ground_truth(bottom[3].data, self.num, p.num_classes,
                                           p.background_label_id, p.use_difficult_gt)
        matches, overlaps = self._match(boxes, truth)
        conf_labels = self._conf_labels(conf, truth, matches, overlaps)
        conf_loss = self.conf_kernel.forward(conf.reshape(self.num * self.priors, -1),
                                             conf_labels)
        loc_loss = self._loc_loss_and_gradient(loc, boxes, variances, truth, matches)
        num_matches = int(sum(np.count_nonzero(m >= 0) for m in matches))
        counts = {"VALID": num_matches, "FULL": self.num * self.priors,
                  "BATCH_SIZE": self.num, "NONE": 1}
        normalizer = max(1.0, float(counts[p.normalization]))
        loss = (p.loc_weight * loc_loss + conf_loss) / normalizer
        if not (abs(loss) <= FLT_MAX and np.isfinite(self.loc_gradient).all()):
            raise InputError(
                f"the loss ({loss:.7g}) or the loc gradient overflows float32: loc_weight "
                f"{p.loc_weight:.7g} times a box loss of {loc_loss:.7g} (summed over the matched "
                f"priors; L2 grows with the square of the predictions) is beyond float32's "
                f"{FLT_MAX:.7g}: lower loc_weight, or check mbox_loc's scale")
        self.normalizer = normalizer
        top[0].data[...] = loss

    def backward(self, top, propagate_down, bottom):
        if self.normalizer is None:
            raise RuntimeError("MultiBoxFocalLossLayer.backward needs a forward that completed "
                               "first")
        scale = top[0].diff[0].item() / self.normalizer
        if propagate_down[0]:
            diff = bottom[0].diff
            with np.errstate(over="ignore"):        # the error below says it
                np.multiply(self.loc_gradient.reshape(diff.shape), np.float32(scale), out=diff)
            if not np.isfinite(diff).all():
                raise InputError(f"the loc gradient times loss_weight / normalizer = {scale:.7g} "
                                 "overflows float32: lower loss_weight or loc_weight")
        if propagate_down[1]:
            self.conf_kernel.backward(scale, bottom[1].diff)
        # Priors and labels take no gradient; Caffe asks under force_backward: zeros.
        for k in (2, 3):
            if propagate_down[k]:
                bottom[k].diff[...] = 0

    def _match(self, boxes, truth):
        """Per image, the match index of every prior and its best overlap
        (multibox.match_priors): two lists."""
        p = self.params
        ignored = np.zeros(self.priors, bool)
        if p.ignore_cross_boundary_bbox:
            ignored = ((boxes < 0) | (boxes > 1)).any(axis=1)
        matches = []
        for _, gt_boxes in truth:
            if len(gt_boxes) == 0:
                # C++ matches nothing in an image without boxes: every prior is a negative.
                matches.append((np.full(self.priors, multibox.NO_MATCH), np.zeros(self.priors)))
                continue
            overlap = multibox.overlaps(boxes, gt_boxes)
            matches.append(multibox.match_priors(overlap, p.match_type, p.overlap_threshold,
                                                 ignored))
        return [match for match, _ in matches], [best for _, best in matches]

    def _conf_labels(self, conf, truth, matches, overlaps):
        """The conf kernel's labels: (N·P,) classes (SOFTMAX) or (N·P, C) targets (LOGISTIC),
        IGNORE where a prior does not count (a negative not mined)."""
        p = self.params
        bg, classes = p.background_label_id, p.num_classes
        if p.conf_loss_type == "SOFTMAX":       # α is the same for every negative: no matter
            def mining_loss(x):
                return multibox.softmax_mining_loss(x, bg, p.focusing_parameter)
        else:
            def mining_loss(x):
                return multibox.logistic_mining_loss(x, bg, p.focusing_parameter, p.alpha)
        labels = np.full((self.num, self.priors), float(bg), np.float32)
        counted = np.ones((self.num, self.priors), bool)
        for i, ((gt_labels, _), match) in enumerate(zip(truth, matches)):
            positive = match >= 0
            labels[i, positive] = gt_labels[match[positive]]
            if p.mining_type == "MAX_NEGATIVE":
                eligible = (match == multibox.NO_MATCH) & (overlaps[i] < p.neg_overlap)
                negatives = multibox.mine_hard_negatives(
                    mining_loss(conf[i]), eligible,
                    int(np.count_nonzero(positive)), p.neg_pos_ratio)
                counted[i] = positive
                counted[i, negatives] = True
        if p.conf_loss_type == "SOFTMAX":
            return np.where(counted, labels, IGNORE).reshape(-1)
        # LOGISTIC: one-hot of the class; a negative's is the background channel when mined
        # (MAX_NEGATIVE), all zeros without mining (as C++ fills them with the id, 0).
        targets = (labels[..., None] == np.arange(classes)).astype(np.float32)
        if p.mining_type == "NONE":
            targets[..., bg] = 0
        targets[~counted] = IGNORE
        return targets.reshape(-1, classes)

    def _loc_loss_and_gradient(self, loc, boxes, variances, truth, matches):
        """Σ over matched priors of the loc loss (smooth L1, or L2 as ½·d²); keeps its gradient
        times loc_weight in self.loc_gradient (zero elsewhere). Returns the sum (float)."""
        p = self.params
        self.loc_gradient[...] = 0
        total = 0.0
        for i, ((_, gt_boxes), match) in enumerate(zip(truth, matches)):
            matched = np.flatnonzero(match >= 0)
            if not len(matched):
                continue
            target = multibox.encode_boxes(boxes[matched], variances[matched],
                                           gt_boxes[match[matched]], p.code_type)
            d = loc[i, matched] - target
            if p.loc_loss_type == "SMOOTH_L1":
                small = np.abs(d) < 1
                total += float(np.where(small, 0.5 * d * d, np.abs(d) - 0.5).sum(dtype=np.float64))
                gradient = np.where(small, d, np.sign(d))
            else:
                total += float((d.astype(np.float64) ** 2).sum() / 2)
                gradient = d
            with np.errstate(over="ignore"):       # forward's check names an overflow
                self.loc_gradient[i, matched] = gradient * np.float32(p.loc_weight)
        return total
