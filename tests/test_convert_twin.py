"""The converter's twin test: an SSD-style net with C++ MultiBoxLoss, and the same net after
focal_loss_layer.convert (MultiBoxFocalLossLayer at focusing_parameter 0), loaded with caffe.Net,
give the same loss and the same mbox_loc and mbox_conf gradients, for SSD's settings and the
others MultiBoxLoss takes. Also chuanqi305's MultiBoxFocalLoss at gamma 0, whose alpha the
converter moves into loss_weight and loc_weight, against C++ MultiBoxLoss's two terms, and the
LOGISTIC + NONE targets C++ scrambles after the first image (docs/convert.md).

loc and conf come from Parameter layers, so that Caffe runs backward to them; the priors and the
(1, 1, G, 8) label rows from Input layers (DESIGN.md §3b). Needs MultiBoxFocalLossLayer.
"""
import numpy as np
import pytest
from caffe_nets import load_net

from focal_loss_layer.convert import convert_text

NUM_CLASSES = 4
# Priors: a 4 × 4 grid of centres, two sizes each (some cross the image border), SSD's variances.
CENTRES = [(x + 0.5) / 4 for x in range(4)]
PRIORS = np.array([[cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2]
                   for cy in CENTRES for cx in CENTRES for s in (0.25, 0.45)], dtype=np.float32)
NUM_PRIORS = len(PRIORS)
# Boxes: image, class, xmin, ymin, xmax, ymax, difficult. Image 0 has two (the first overlaps two
# priors by IoU 0.57, so per-prediction matching adds one to bipartite), image 1 two (one
# difficult), image 2 none.
BOXES = [(0, 1, 0.27, 0.15, 0.73, 0.60, 0), (0, 2, 0.52, 0.50, 0.98, 0.97, 0),
         (1, 3, 0.03, 0.52, 0.27, 0.74, 0), (1, 1, 0.60, 0.05, 0.90, 0.45, 1)]

SSD_FIELDS = """loc_loss_type: SMOOTH_L1
    conf_loss_type: SOFTMAX
    loc_weight: 1.0
    share_location: true
    match_type: PER_PREDICTION
    overlap_threshold: 0.5
    use_prior_for_matching: true
    background_label_id: 0
    use_difficult_gt: true
    neg_pos_ratio: 3.0
    neg_overlap: 0.5
    code_type: CENTER_SIZE
    ignore_cross_boundary_bbox: false
    mining_type: MAX_NEGATIVE"""

NET = """layer {{ name: "mbox_loc" type: "Parameter" top: "mbox_loc"
  parameter_param {{ shape {{ dim: {n} dim: {loc} }} }} }}
layer {{ name: "mbox_conf" type: "Parameter" top: "mbox_conf"
  parameter_param {{ shape {{ dim: {n} dim: {conf} }} }} }}
layer {{ name: "mbox_priorbox" type: "Input" top: "mbox_priorbox"
  input_param {{ shape {{ dim: 1 dim: 2 dim: {loc} }} }} }}
layer {{ name: "label" type: "Input" top: "label"
  input_param {{ shape {{ dim: 1 dim: 1 dim: {rows} dim: 8 }} }} }}
layer {{
  name: "mbox_loss"
  type: "{type}"
  bottom: "mbox_loc"
  bottom: "mbox_conf"
  bottom: "mbox_priorbox"
  bottom: "label"
  top: "mbox_loss"
  {propagate_down}
  loss_param {{ {loss} }}
  {focal}
  multibox_loss_param {{
    num_classes: {classes}
    {fields}
  }}
}}
"""


def net_text(num_images, loss="normalization: VALID", fields=SSD_FIELDS, rows=None,
             propagate_down=(True, True, False, False), layer_type="MultiBoxLoss", focal=""):
    return NET.format(n=num_images, loc=NUM_PRIORS * 4, conf=NUM_PRIORS * NUM_CLASSES,
                      rows=rows if rows is not None else len(label_rows(num_images)),
                      type=layer_type, loss=loss, focal=focal, classes=NUM_CLASSES, fields=fields,
                      propagate_down="\n  ".join(f"propagate_down: {str(p).lower()}" for p in propagate_down))


def label_rows(num_images, only_image=None):
    """SSD's label rows for the first num_images images (or for image only_image, renumbered
    0); one row of -1s when there is no box."""
    rows = [[0 if only_image is not None else image, cls, 0, *box, difficult]
            for image, cls, *box, difficult in BOXES
            if (image == only_image if only_image is not None else image < num_images)]
    return np.array(rows or [[-1] * 8], dtype=np.float32)


def inputs(num_images, seed=0):
    rng = np.random.default_rng(seed)
    loc = rng.normal(0, 0.5, (num_images, NUM_PRIORS * 4)).astype(np.float32)
    conf = rng.normal(0, 1.5, (num_images, NUM_PRIORS * NUM_CLASSES)).astype(np.float32)
    return loc, conf


def run(text, loc, conf, rows):
    """(top value, loss_weight, mbox_loc diff, mbox_conf diff) after one forward and backward."""
    net = load_net(text)
    net.params["mbox_loc"][0].data[...] = loc
    net.params["mbox_conf"][0].data[...] = conf
    net.blobs["mbox_priorbox"].data[...] = np.stack([PRIORS.reshape(-1),
                                                     np.tile([0.1, 0.1, 0.2, 0.2], NUM_PRIORS)])[None]
    net.blobs["label"].data[...] = rows.reshape(net.blobs["label"].data.shape)
    net.forward()
    net.backward()
    # read the bottoms' diffs: with mining NONE, MultiBoxLoss hands mbox_conf its diff by
    # ShareDiff, which the Parameter layer's own param diff does not see (DESIGN.md §3b)
    return (float(net.blobs["mbox_loss"].data.reshape(-1)[0]), net.blobs["mbox_loc"].diff.copy(),
            net.blobs["mbox_conf"].diff.copy())


def converted(text):
    conversion = convert_text(text)
    assert [(r.layer, r.params["focusing_parameter"]) for r in conversion.rewrites] == \
        [("MultiBoxFocalLossLayer", 0)]
    return conversion.text


def assert_twins(expected, actual):
    loss, loc_diff, conf_diff = expected
    assert actual[0] == pytest.approx(loss, rel=1e-5, abs=1e-7)
    for mine, theirs in ((actual[1], loc_diff), (actual[2], conf_diff)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6 * max(1.0, np.abs(theirs).max()))


CASES = {
    "ssd300 settings": dict(num_images=2),
    "three images, one without boxes": dict(num_images=3),
    "mining NONE": dict(num_images=3, fields=SSD_FIELDS.replace("MAX_NEGATIVE", "NONE")),
    "LOGISTIC, MAX_NEGATIVE": dict(num_images=3, fields=SSD_FIELDS.replace("SOFTMAX", "LOGISTIC")),
    "LOGISTIC, NONE, one image": dict(num_images=1, fields=SSD_FIELDS.replace("SOFTMAX", "LOGISTIC")
                                      .replace("MAX_NEGATIVE", "NONE")),
    "normalize false = BATCH_SIZE": dict(num_images=2, loss="normalize: false"),
    "normalize true = VALID": dict(num_images=2, loss="normalize: true"),
    "FULL": dict(num_images=2, loss="normalization: FULL"),
    "NONE normalization": dict(num_images=2, loss="normalization: NONE"),
    "no loss_param (VALID)": dict(num_images=2, loss=""),
    "bipartite, corner codes, L2": dict(num_images=2, fields=SSD_FIELDS
                                        .replace("PER_PREDICTION", "BIPARTITE")
                                        .replace("CENTER_SIZE", "CORNER").replace("SMOOTH_L1", "L2")
                                        .replace("loc_weight: 1.0", "loc_weight: 2.5")
                                        .replace("neg_pos_ratio: 3.0", "neg_pos_ratio: 2.0")),
    "thresholds": dict(num_images=2, fields=SSD_FIELDS.replace("overlap_threshold: 0.5", "overlap_threshold: 0.3")
                       .replace("neg_overlap: 0.5", "neg_overlap: 0.2")),
    "difficult boxes left out": dict(num_images=2, fields=SSD_FIELDS.replace("use_difficult_gt: true",
                                                                             "use_difficult_gt: false")),
    "cross-boundary priors ignored": dict(num_images=2, fields=SSD_FIELDS.replace(
        "ignore_cross_boundary_bbox: false", "ignore_cross_boundary_bbox: true")),
    "no propagate_down lines": dict(num_images=2, propagate_down=()),
}


@pytest.mark.parametrize("case", list(CASES))
def test_converted_multibox_loss_is_the_cpp_loss(case):
    settings = dict(CASES[case])
    num_images = settings["num_images"]
    text = net_text(**settings)
    loc, conf = inputs(num_images)
    rows = label_rows(num_images)
    assert_twins(run(text, loc, conf, rows), run(converted(text), loc, conf, rows))


def test_logistic_without_mining_gets_the_right_targets_after_the_first_image():
    """C++ puts image i's LOGISTIC targets i·P entries in, not i·P·C (docs/convert.md): on two
    images it differs from the converted layer, which equals C++ run on each image alone (where
    the bug cannot act). normalization NONE makes the batch loss the sum of the images' losses."""
    fields = SSD_FIELDS.replace("SOFTMAX", "LOGISTIC").replace("MAX_NEGATIVE", "NONE")
    text = net_text(2, loss="normalization: NONE", fields=fields)
    loc, conf = inputs(2)
    both = run(converted(text), loc, conf, label_rows(2))
    alone = [run(net_text(1, loss="normalization: NONE", fields=fields), loc[i:i + 1], conf[i:i + 1],
                 label_rows(1, only_image=i)) for i in range(2)]
    assert both[0] == pytest.approx(alone[0][0] + alone[1][0], rel=1e-5)
    for blob in (1, 2):     # mbox_loc, mbox_conf
        np.testing.assert_allclose(both[blob], np.concatenate([alone[0][blob], alone[1][blob]]),
                                   rtol=1e-4, atol=1e-7)
    cpp = run(text, loc, conf, label_rows(2))
    assert cpp[0] != pytest.approx(both[0], rel=1e-3)      # C++'s scrambled targets


def test_chuanqi_multibox_focal_loss_at_gamma_0():
    """chuanqi305's MultiBoxFocalLoss at gamma 0 is loc_weight·loc + alpha·conf (its alpha
    multiplies the conf loss only); the converted layer (loss_weight × alpha, loc_weight ÷ alpha)
    trains on the same: checked against C++ MultiBoxLoss's two terms, taken one at a time through
    propagate_down (MultiBoxLoss counts a term only where it propagates)."""
    alpha, loc_weight = 0.25, 1.5
    fields = SSD_FIELDS.replace("loc_weight: 1.0", f"loc_weight: {loc_weight}")
    focal = f"focal_loss_param {{ alpha: {alpha} gamma: 0 }}"
    conversion = convert_text(net_text(2, fields=fields, layer_type="MultiBoxFocalLoss", focal=focal))
    (rewrite,) = conversion.rewrites
    assert (rewrite.loss_weight, rewrite.params["loc_weight"]) == (alpha, loc_weight / alpha)
    loc, conf = inputs(2)
    rows = label_rows(2)
    loss, loc_diff, conf_diff = run(conversion.text, loc, conf, rows)
    loc_term = run(net_text(2, fields=fields, propagate_down=(True, False, False, False)), loc, conf, rows)
    conf_term = run(net_text(2, fields=fields, propagate_down=(False, True, False, False)), loc, conf, rows)
    assert alpha * loss == pytest.approx(loc_term[0] + alpha * conf_term[0], rel=1e-5)
    assert_twins((loc_term[0] + alpha * conf_term[0], loc_term[1], alpha * conf_term[2]),
                 (alpha * loss, loc_diff, conf_diff))
