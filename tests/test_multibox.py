"""The numpy parts of MultiBoxFocalLossLayer (focal_loss_layer.multibox, .multibox_params): label
rows read or refused by name, overlaps, matching and its tie rules, box codes, mining; and the
param_str keys. (Against C++ MultiBoxLoss as a whole: tests/test_multibox_twin.py.)"""
import numpy as np
import pytest

from focal_loss_layer import multibox
from focal_loss_layer.errors import InputError, ParamError
from focal_loss_layer.multibox_params import parse_multibox_param_str

F = np.float32


def rows(*values):
    return np.array(values, np.float32).reshape(1, 1, -1, 8)


def test_ground_truth_per_image_with_no_box_rows_and_difficult_boxes():
    labels = rows([0, 1, 0, .1, .1, .3, .3, 0], [-1, -1, -1, -1, -1, -1, -1, -1],
                  [2, 3, 0, .2, .2, .6, .7, 1], [2, 2, 1, .5, .5, .9, .9, 0])
    truth = multibox.read_ground_truth(labels, 3, 4, 0, use_difficult_gt=True)
    assert [list(t[0]) for t in truth] == [[1], [], [3, 2]]
    np.testing.assert_array_equal(truth[2][1][0], F([.2, .2, .6, .7]))
    without = multibox.read_ground_truth(labels, 3, 4, 0, use_difficult_gt=False)
    assert [list(t[0]) for t in without] == [[1], [], [2]]


@pytest.mark.parametrize("row, message", [
    ([5, 1, 0, .1, .1, .3, .3, 0], r"row 0 .*its image id 5.0 is not an image of this batch \(0..1"),
    ([0, 0, 0, .1, .1, .3, .3, 0], "its class 0.0 is not an object class .*background_label_id 0"),
    ([0, 4, 0, .1, .1, .3, .3, 0], "its class 4.0 is not an object class"),
    ([0, 1.5, 0, .1, .1, .3, .3, 0], "its class 1.5"),
    ([0, 1, 0, .1, np.nan, .3, .3, 0], "is not finite"),
    ([0, 1, 0, .3, .1, .2, .3, 0], "is inverted"),
    ([0, 1, 0, .1, .1, .3, .3, 2], "its difficult flag 2.0 is not 0 or 1"),
])
def test_a_bad_label_row_is_named(row, message):
    with pytest.raises(InputError, match=message):
        multibox.read_ground_truth(rows([0, 1, 0, .1, .1, .2, .2, 0], row)[:, :, 1:], 2, 4, 0,
                                   True)


def test_a_box_of_zero_width_is_kept_and_never_matched_as_cpp_keeps_it():
    truth = multibox.read_ground_truth(rows([0, 1, 0, .3, .3, .3, .6, 0]), 1, 3, 0, True)
    labels, boxes = truth[0]
    assert list(labels) == [1]
    priors = F([[.2, .2, .4, .7], [.3, .3, .3, .6]])
    assert not multibox.overlaps(priors, boxes).any()


def test_a_label_blob_of_the_wrong_size_is_refused():
    with pytest.raises(InputError, match="not a multiple of 8"):
        multibox.read_ground_truth(np.zeros(12, np.float32), 1, 3, 0, True)


def test_overlaps_are_jaccard_in_float32_and_zero_apart():
    priors = F([[0, 0, .5, .5], [.5, .5, 1, 1], [.25, .25, .75, .75]])
    boxes = F([[0, 0, .5, .5], [.6, .6, .7, .7]])
    got = multibox.overlaps(priors, boxes)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [[1, 0], [0, .01 / .25], [.0625 / (.25 + .25 - .0625), .04]],
                               rtol=1e-6)


def test_bipartite_matching_ties_go_to_the_lowest_prior_then_box_and_ignore_the_threshold():
    overlap = F([[.3, .3], [.3, .2], [.1, .25]])
    match, best = multibox.match_priors(overlap, "BIPARTITE", 0.5, np.zeros(3, bool))
    # (0, 0) first: the largest, lowest prior and box; then box 1's best left: prior 2 (0.25)
    assert list(match) == [0, -1, 1]
    np.testing.assert_allclose(best, [.3, .3, .25])


def test_per_prediction_adds_priors_over_the_threshold_to_their_best_box():
    overlap = F([[.9, .6], [.55, .7], [.4, .45], [0, 0]])
    match, _ = multibox.match_priors(overlap, "PER_PREDICTION", 0.5, np.zeros(4, bool))
    assert list(match) == [0, 1, -1, -1]
    overlap = F([[.9, .0], [.6, .0], [.0, .3]])
    match, best = multibox.match_priors(overlap, "PER_PREDICTION", 0.5, np.zeros(3, bool))
    assert list(match) == [0, 0, 1] and best[2] == F(.3)


def test_ignored_priors_match_nothing_and_overlap_nothing():
    overlap = F([[.9], [.8]])
    match, best = multibox.match_priors(overlap, "PER_PREDICTION", 0.5, np.array([True, False]))
    assert list(match) == [multibox.IGNORED, 0] and best[0] == 0


def test_box_codes():
    prior, box, variance = F([[.2, .2, .6, .4]]), F([[.3, .2, .5, .6]]), F([[.1, .1, .2, .2]])
    np.testing.assert_allclose(multibox.encode_boxes(prior, variance, box, "CORNER"),
                               [[1, 0, -.5, 1]], rtol=1e-5)
    np.testing.assert_allclose(multibox.encode_boxes(prior, variance, box, "CENTER_SIZE"),
                               [[0, 5, np.log(.5) / .2, np.log(2) / .2]], rtol=1e-5, atol=1e-6)


def test_mining_takes_the_highest_loss_eligible_negatives_in_prior_order():
    loss = F([5, 1, 4, 3, 9, 2])
    eligible = np.array([True, True, True, True, False, True])
    assert list(multibox.mine_hard_negatives(loss, eligible, 1, 3.0)) == [0, 2, 3]
    assert list(multibox.mine_hard_negatives(loss, eligible, 10, 3.0)) == [0, 1, 2, 3, 5]
    assert len(multibox.mine_hard_negatives(loss, eligible, 0, 3.0)) == 0
    assert list(multibox.mine_hard_negatives(loss, eligible, 1, 1.5)) == [0]   # int(1.5)


def test_mining_losses_at_gamma_0_are_cross_entropies_and_shrink_with_gamma():
    """(In float32 as C++'s: −log p near p = 1 keeps an absolute, not a relative, precision.)"""
    conf = np.random.default_rng(0).normal(0, 3, (50, 4)).astype(np.float32)
    x = conf.astype(np.float64)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(multibox.softmax_mining_loss(conf, 0, 0.0), -np.log(p[:, 0]),
                               rtol=1e-5, atol=1e-6)
    sig = 1 / (1 + np.exp(-conf.astype(np.float64)))
    ce = -np.log(sig[:, 0]) - np.log(1 - sig[:, 1:]).sum(axis=1)
    np.testing.assert_allclose(multibox.logistic_mining_loss(conf, 0, 0.0), ce, rtol=1e-5,
                               atol=1e-6)
    for loss in (multibox.softmax_mining_loss, multibox.logistic_mining_loss):
        assert np.all(loss(conf, 0, 2.0) <= loss(conf, 0, 0.0) + 1e-6)
    # with α, the logistic ranking loss is the layer's: α on the target term, 1 − α elsewhere
    from focal_loss_layer.core import focal_terms
    pos, neg, _, _ = focal_terms(conf.astype(np.float64), 2.0)
    np.testing.assert_allclose(multibox.logistic_mining_loss(conf, 0, 2.0, alpha=0.25),
                               0.25 * pos[:, 0] + 0.75 * neg[:, 1:].sum(axis=1),
                               rtol=1e-5, atol=1e-6)


def test_param_str_keys_defaults_and_enums_in_either_case():
    params = parse_multibox_param_str('{"num_classes": 21, "mining_type": "none", '
                                      '"conf_loss_type": "LOGISTIC", "use_difficult_gt": false}')
    assert (params.num_classes, params.mining_type, params.conf_loss_type) == (21, "NONE",
                                                                                 "LOGISTIC")
    assert (params.match_type, params.code_type, params.normalization) == (
        "PER_PREDICTION", "CORNER", "VALID")
    assert params.focusing_parameter == 2.0 and params.use_difficult_gt is False


@pytest.mark.parametrize("param_str, message", [
    ("{}", "num_classes is required"),
    ("{'num_classes': 3, 'mining_type': 'HARD_EXAMPLE'}", "HARD_EXAMPLE mining is not implemented"),
    ("{'num_classes': 3, 'code_type': 'CORNER_SIZE'}", "CORNER_SIZE box codes are not"),
    ("{'num_classes': 3, 'share_location': False}", "share_location = False is not supported"),
    ("{'num_classes': 3, 'encode_variance_in_target': True}", "omits the 1/variance factor"),
    ("{'num_classes': 3, 'match_type': 'GREEDY'}", "match_type = 'GREEDY' is not allowed: "
                                                   "match_type must be one of"),
    ("{'num_classes': 3, 'gamma': 2}", "did you mean 'focusing_parameter'"),
    ("{'num_classes': 3, 'background_label_id': 3}", "must be a class, 0..2"),
    ("{'num_classes': 3, 'conf_loss_type': 'LOGISTIC', 'background_label_id': 1}",
     "not supported with conf_loss_type LOGISTIC"),
    ("{'num_classes': 3, 'use_difficult_gt': 1}", "use_difficult_gt = 1 is not allowed"),
    ("{'num_classes': 3, 'do_neg_mining': False}", "contradicts mining_type = 'MAX_NEGATIVE'"),
    ("{'num_classes': 3, 'alpha': 2}", "alpha = 2 is not allowed"),
    ("{'num_classes': 3, 'share_location': 1}", "share_location = 1 is not allowed: "
                                                "share_location must be true or false"),
    ("{'num_classes': 3, 'do_neg_mining': 'yes'}", "do_neg_mining = 'yes' is not allowed"),
])
def test_bad_param_str_names_the_key(param_str, message):
    with pytest.raises(ParamError, match=message):
        parse_multibox_param_str(param_str)
