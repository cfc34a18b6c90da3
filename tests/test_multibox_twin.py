"""MultiBoxFocalLossLayer at focusing_parameter 0 against C++ MultiBoxLoss in the same net shapes
(real caffe.Net, the project's SSD-fork Caffe): the loss to 1e-4 relative (C++ sums it
sequentially in float32) and both gradients to float32 rounding, for every conf_loss_type ×
mining_type × match_type × code_type and every normalization, on batches of 1 to 8 images with
images without boxes and difficult boxes used or not. LOGISTIC without mining is compared per
image (batch 1): there C++ places the targets of every image after the first at the wrong
priors, which the last test pins."""
import itertools

import numpy as np
import pytest

from focal_loss_layer.check.multibox_nets import multibox_net, random_inputs, run_multibox

PRIORS, CLASSES = 120, 5
COMBINATIONS = list(itertools.product(("SOFTMAX", "LOGISTIC"), ("NONE", "MAX_NEGATIVE"),
                                      ("BIPARTITE", "PER_PREDICTION"), ("CENTER_SIZE", "CORNER")))
NORMALIZATIONS = ("VALID", "FULL", "BATCH_SIZE", "NONE")
BATCHES = (1, 2, 3, 5, 8)


def twin(settings, inputs, focusing_parameter=0.0):
    """(C++ MultiBoxLoss's (loss, loc grad, conf grad), this layer's) on the same inputs."""
    num = inputs[0].shape[0]
    rows = inputs[3].shape[2]
    cpp = run_multibox(multibox_net(num, PRIORS, CLASSES, rows, settings, python=False), inputs)
    ours = run_multibox(multibox_net(num, PRIORS, CLASSES, rows,
                                     dict(settings, focusing_parameter=focusing_parameter),
                                     python=True), inputs)
    return cpp, ours


def assert_same(cpp, ours):
    (cpp_loss, cpp_loc, cpp_conf), (loss, loc, conf) = cpp, ours
    np.testing.assert_allclose(loss, cpp_loss, rtol=1e-4)
    for got, expected in ((loc, cpp_loc), (conf, cpp_conf)):
        atol = 1e-6 * max(np.abs(expected).max(), 1e-30)
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=atol)


def case(index, conf_loss_type, mining_type, match_type, code_type, normalization):
    settings = {"num_classes": CLASSES, "conf_loss_type": conf_loss_type,
                "mining_type": mining_type, "match_type": match_type, "code_type": code_type,
                "use_difficult_gt": index % 2 == 0, "normalization": normalization}
    per_image = conf_loss_type == "LOGISTIC" and mining_type == "NONE"
    num = 1 if per_image else BATCHES[index % len(BATCHES)]
    boxes = (2, 4) if num == 1 else (0, 4)      # batches of several hold images without boxes
    return settings, random_inputs(np.random.default_rng(index), num, PRIORS, CLASSES, boxes)


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
@pytest.mark.parametrize("conf_loss_type, mining_type, match_type, code_type", COMBINATIONS)
def test_gamma_0_equals_multibox_loss(conf_loss_type, mining_type, match_type, code_type,
                                      normalization):
    index = COMBINATIONS.index((conf_loss_type, mining_type, match_type, code_type)) * 4 + \
        NORMALIZATIONS.index(normalization)
    settings, inputs = case(index, conf_loss_type, mining_type, match_type, code_type,
                            normalization)
    cpp, ours = twin(settings, inputs)
    assert np.abs(cpp[1]).max() > 0 and np.abs(cpp[2]).max() > 0    # not vacuous
    assert_same(cpp, ours)


@pytest.mark.parametrize("num", [1, 4, 8])
@pytest.mark.parametrize("use_difficult_gt", [True, False])
def test_batches_with_images_without_boxes_and_difficult_boxes(num, use_difficult_gt):
    rng = np.random.default_rng(100 + num)
    inputs = random_inputs(rng, num, PRIORS, CLASSES, boxes_per_image=(0, 3),
                           difficult_fraction=0.4)
    settings = {"num_classes": CLASSES, "use_difficult_gt": use_difficult_gt}
    assert_same(*twin(settings, inputs))


def test_a_batch_without_any_box():
    """SSD's data layer writes one row of −1s: no positives, no mined negatives, loss 0."""
    inputs = random_inputs(np.random.default_rng(7), 3, PRIORS, CLASSES, boxes_per_image=(0, 0))
    cpp, ours = twin({"num_classes": CLASSES}, inputs)
    assert_same(cpp, ours)
    assert ours[0] == 0


@pytest.mark.parametrize("settings", [
    {"ignore_cross_boundary_bbox": True},
    {"background_label_id": 2},
    {"loc_loss_type": "L2", "loc_weight": 0.5},
    {"overlap_threshold": 0.3, "neg_overlap": 0.4, "neg_pos_ratio": 2.0},
], ids=["cross-boundary", "background-2", "L2-loc-weight", "thresholds"])
def test_other_settings_equal_multibox_loss(settings):
    bg = settings.get("background_label_id", 0)
    inputs = random_inputs(np.random.default_rng(11), 3, PRIORS, CLASSES, background_label_id=bg)
    assert_same(*twin(dict(settings, num_classes=CLASSES), inputs))


def test_cpp_places_logistic_targets_wrongly_after_the_first_image_without_mining():
    """The C++ bug the layer does not copy: with LOGISTIC and NONE, EncodeConfPrediction
    advances its target pointer by P per image instead of P·C, so image i's targets land at
    i·P + p·C + class, inside the first image's rows: the batch's C++ conf gradient is not its
    images' own. The layer's equals C++'s image by image."""
    settings = {"num_classes": CLASSES, "conf_loss_type": "LOGISTIC", "mining_type": "NONE",
                "normalization": "NONE"}
    loc, conf, priors, labels = random_inputs(np.random.default_rng(5), 2, PRIORS, CLASSES,
                                              boxes_per_image=(2, 3))
    cpp_batch, ours_batch = twin(settings, (loc, conf, priors, labels))
    rows = labels.reshape(-1, 8)
    alone = []
    for image in range(2):
        mine = rows[rows[:, 0] == image].copy()
        mine[:, 0] = 0
        cpp_alone, _ = twin(settings, (loc[image:image + 1], conf[image:image + 1], priors,
                                       mine.reshape(1, 1, -1, 8)))
        np.testing.assert_allclose(ours_batch[2][image], cpp_alone[2][0], rtol=2e-5, atol=1e-7)
        alone.append(cpp_alone[2][0])
    assert np.abs(cpp_batch[2] - np.stack(alone)).max() > 0.1


@pytest.mark.parametrize("conf_loss_type", ["SOFTMAX", "LOGISTIC"])
def test_at_gamma_2_the_conf_gradient_is_the_focal_gradient_of_the_targets_cpp_matches(
        conf_loss_type):
    """Without mining, C++'s γ = 0 conf gradient is (p − target) / normalizer per prior, which
    gives away the targets it matched; at γ = 2 the layer's conf gradient must be the numpy
    cores' focal gradient of exactly those targets (one image: the LOGISTIC bug above)."""
    from focal_loss_layer.core import sigmoid_focal_loss_and_gradient
    from focal_loss_layer.softmax_core import softmax_focal_loss_and_gradient
    settings = {"num_classes": CLASSES, "conf_loss_type": conf_loss_type, "mining_type": "NONE",
                "normalization": "NONE"}
    inputs = random_inputs(np.random.default_rng(21), 1, PRIORS, CLASSES, boxes_per_image=(3, 4))
    conf = inputs[1].reshape(PRIORS, CLASSES).astype(np.float64)
    cpp, ours = twin(settings, inputs, focusing_parameter=2.0)
    cpp_grad = cpp[2].reshape(PRIORS, CLASSES)
    if conf_loss_type == "SOFTMAX":
        p = np.exp(conf - conf.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        classes = np.rint(p - cpp_grad).argmax(axis=1)
        assert np.count_nonzero(classes) > 0        # some priors matched an object
        _, expected = softmax_focal_loss_and_gradient(conf, classes, focusing_parameter=2.0,
                                                      normalization="none")
    else:
        targets = np.rint(1 / (1 + np.exp(-conf)) - cpp_grad)
        assert targets.sum() > 0
        _, expected = sigmoid_focal_loss_and_gradient(conf, targets, focusing_parameter=2.0,
                                                      normalization="none")
    np.testing.assert_allclose(ours[2].reshape(PRIORS, CLASSES), expected, rtol=1e-4, atol=1e-6)
