"""HardNegativeLossLayer (examples/detector/ohem_layer.py), the OHEM arm of the paper's Table 1d,
in real Caffe nets of two pyramid levels: its loss and gradient against a reference that looks at
one anchor at a time and mines by sorting, central differences, mining across levels, the diff
contract (propagate_down, force_backward), and errors that name their cause.

The logits come from Parameter layers, so that Caffe runs the loss's backward without
force_backward and a `propagate_down: false` in the prototxt is what the layer sees (under
force_backward Caffe would ask a Python layer for every bottom's gradient anyway)."""
import caffe
import numpy as np
import pytest

from examples.detector.ohem_layer import parse_ohem_param_str
from focal_loss_layer.check.multibox_nets import parameter_layer
from focal_loss_layer.check.nets import input_layer, load_net, python_loss
from focal_loss_layer.errors import InputError, ParamError

NUM, ANCHORS, CLASSES = 3, 2, 3
SIZES = ((4, 4), (2, 2))                      # the two levels' H x W
PARAM = "{'num_anchors': 2, 'neg_pos_ratio': 3, 'ignore_label': -1}"
HUGE = 30.0                                   # a negative at +30 on every class loses ≈ 90
SENTINEL = 7.0


# The net and its inputs.

def ohem_net(num=NUM, sizes=SIZES, param=PARAM, loss_weight=1.0, propagate_down=None,
             force_backward=False, label_sizes=None, channels=ANCHORS * CLASSES,
             normalizer="positives"):
    """score_<l> (Parameter) and label_<l> (Input) per level, num_positives (N, 1) summed by a
    Reduction into the scalar "positives", and the layer "loss" on them."""
    levels = range(len(sizes))
    label_sizes = label_sizes or sizes
    text = "force_backward: true\n" if force_backward else ""
    text += "".join(parameter_layer(f"score_{l}", (num, channels) + sizes[l]) for l in levels)
    text += "".join(input_layer(f"label_{l}", (num, ANCHORS) + label_sizes[l]) for l in levels)
    text += input_layer("num_positives", (num, 1))
    text += ('layer { name: "positives" type: "Reduction" bottom: "num_positives" '
             'top: "positives" reduction_param { operation: SUM } }\n')
    bottoms = ([f"score_{l}" for l in levels] + [f"label_{l}" for l in levels]
               + ([normalizer] if normalizer else []))
    return text + python_loss("loss", "examples.detector.ohem_layer", "HardNegativeLossLayer",
                              param, bottoms, loss_weight, propagate_down)


def loaded(text, logits, labels):
    """The net with its inputs set and one forward run: a Parameter layer's first forward
    resets its top's diff, which would hide what the loss does to it."""
    net = load_net(text, cpu=True)
    for l, (x, y) in enumerate(zip(logits, labels)):
        net.params[f"score_{l}"][0].data[...] = x
        net.blobs[f"label_{l}"].data[...] = y
    positives = sum((y >= 1).reshape(len(y), -1).sum(axis=1) for y in labels)
    net.blobs["num_positives"].data[...] = positives.reshape(-1, 1)
    net.forward()
    return net


def mixed_batch(seed=0):
    """Logits (N, A·C, H, W) and labels (N, A, H, W) per level, float32:
    image 0: 3 positives on both levels, 9 hard negatives to find among 32 candidates, and
             ignored anchors whose logits (+30) would make them the hardest negatives by far;
    image 1: no positive (so no negative counts), a few ignored anchors;
    image 2: 12 positives but only 4 candidates (fewer than 3 × 12), the rest ignored."""
    rng = np.random.default_rng(seed)
    logits = [rng.normal(0, 2, (NUM, ANCHORS * CLASSES) + s).astype(np.float32) for s in SIZES]
    labels = [np.zeros((NUM, ANCHORS) + s, np.float32) for s in SIZES]

    def ignore(l, n, a, y, x):
        labels[l][n, a, y, x] = -1
        logits[l][n, a * CLASSES:(a + 1) * CLASSES, y, x] = HUGE

    labels[0][0, 0, 1, 2], labels[0][0, 1, 3, 3], labels[1][0, 1, 0, 1] = 2, 3, 1
    for x in range(4):
        ignore(0, 0, 0, 0, x)
    ignore(1, 0, 0, 1, 1)
    for x in range(4):
        ignore(0, 1, 1, 2, x)
    for l, size in enumerate(SIZES):
        for a, y, x in np.ndindex(ANCHORS, *size):
            ignore(l, 2, a, y, x)
    labels[0][2, 0, :3, :] = rng.integers(1, CLASSES + 1, (3, 4))
    logits[0][2, :CLASSES, :3, :] = rng.normal(0, 2, (CLASSES, 3, 4))
    for l, a, y, x in ((0, 1, 3, 0), (0, 1, 3, 1), (1, 0, 0, 0), (1, 1, 1, 1)):
        labels[l][2, a, y, x] = 0
        logits[l][2, a * CLASSES:(a + 1) * CLASSES, y, x] = rng.normal(0, 2, CLASSES)
    return logits, labels


# The reference: one anchor at a time, mining by sorting.

def reference(logits, labels, normalizer, ratio=3):
    """(loss, per-level gradients of the loss, selected anchors {(n, level, a, y, x)}), float64.
    Per image, its anchors in level order, each level in (a, y, x) order; all positives plus the
    int(P × ratio) candidates (label 0) of highest loss, ties to the earlier anchor."""
    divisor = max(normalizer, 1.0)
    gradients = [np.zeros(x.shape) for x in logits]
    total, selected = 0.0, set()
    for n in range(len(labels[0])):
        anchors = [(l, a, y, x) for l in range(len(labels))
                   for a, y, x in np.ndindex(*labels[l].shape[1:])]
        loss, grad, label = {}, {}, {}
        for anchor in anchors:
            l, a, y, x = anchor
            z = np.asarray(logits[l][n, a * CLASSES:(a + 1) * CLASSES, y, x], np.float64)
            label[anchor] = labels[l][n, a, y, x]
            t = np.zeros(CLASSES)
            if label[anchor] >= 1:
                t[int(label[anchor]) - 1] = 1
            # BCE: t·log(1 + e^−z) + (1 − t)·log(1 + e^z)
            loss[anchor] = float(np.sum(t * np.logaddexp(0, -z) + (1 - t) * np.logaddexp(0, z)))
            grad[anchor] = 1 / (1 + np.exp(-z)) - t
        positives = [anchor for anchor in anchors if label[anchor] >= 1]
        candidates = [(-loss[anchor], i, anchor) for i, anchor in enumerate(anchors)
                      if label[anchor] == 0]
        hard = [anchor for _, _, anchor in sorted(candidates)[:int(len(positives) * ratio)]]
        for anchor in positives + hard:
            l, a, y, x = anchor
            total += loss[anchor]
            gradients[l][n, a * CLASSES:(a + 1) * CLASSES, y, x] = grad[anchor] / divisor
            selected.add((n,) + anchor)
    return total / divisor, gradients, selected


def positives_of(labels):
    return float(sum(np.count_nonzero(y >= 1) for y in labels))


def test_the_reference_batch_has_the_cases_it_claims():
    """The inputs of the tests below: image 1 selects nothing, image 2 all its 16 anchors (fewer
    candidates than 3 × 12), image 0 3 positives + 9 negatives and no ignored anchor, and the
    ignored anchors would be the hardest negatives if they were candidates."""
    logits, labels = mixed_batch()
    _, _, selected = reference(logits, labels, positives_of(labels))
    per_image = [sorted(s for s in selected if s[0] == n) for n in range(NUM)]
    assert [len(s) for s in per_image] == [12, 0, 16]
    assert all(labels[l][n, a, y, x] != -1 for n, l, a, y, x in selected)
    unignored = [np.where(y == -1, 0, y) for y in labels]
    _, _, selected_if_not_ignored = reference(logits, unignored, positives_of(labels))
    assert any(labels[l][n, a, y, x] == -1 for n, l, a, y, x in selected_if_not_ignored)


# 1. The loss.

def test_the_loss_equals_the_reference_with_empty_and_short_images_and_ignored_anchors():
    logits, labels = mixed_batch()
    net = loaded(ohem_net(), logits, labels)
    loss = net.forward()["loss"]
    assert loss.shape == ()                     # a scalar, as Caffe's loss layers
    expected, _, _ = reference(logits, labels, positives_of(labels))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # The mining matters here: every candidate counted would give another loss.
    all_candidates, _, _ = reference(logits, labels, positives_of(labels), ratio=1e6)
    assert abs(all_candidates - expected) > 0.1


def test_the_normalizer_bottom_divides_the_loss():
    logits, labels = mixed_batch()
    net = loaded(ohem_net(), logits, labels)
    for value, divisor in ((40.0, 40.0), (0.5, 1.0), (0.0, 1.0)):
        net.blobs["num_positives"].data[...] = 0
        net.blobs["num_positives"].data[0, 0] = value
        expected, _, _ = reference(logits, labels, value)
        # The count of positives in the labels, not the normalizer, decides the mining.
        assert net.forward()["loss"].item() == pytest.approx(expected, rel=1e-6)
        assert expected == pytest.approx(reference(logits, labels, 1.0)[0] / divisor)


# 2. The gradient.

def test_backward_is_loss_weight_times_the_reference_gradient():
    logits, labels = mixed_batch()
    net = loaded(ohem_net(loss_weight=0.7), logits, labels)
    net.forward()
    net.backward()
    _, gradients, _ = reference(logits, labels, positives_of(labels))
    for l, gradient in enumerate(gradients):
        assert np.count_nonzero(gradient) > 0
        np.testing.assert_allclose(net.blobs[f"score_{l}"].diff, np.float32(0.7) * gradient,
                                   rtol=1e-5, atol=1e-8, err_msg=f"level {l}")


def test_the_reference_gradient_matches_central_differences_in_float64():
    """Every logit moved by ±1e-6 in float64, where the selection does not change (the
    construction keeps every logit away from a mining boundary: all are checked)."""
    logits, labels = mixed_batch()
    logits = [x.astype(np.float64) for x in logits]
    normalizer = positives_of(labels)
    _, gradients, selected = reference(logits, labels, normalizer)
    step = 1e-6
    for l, x in enumerate(logits):
        for index in np.ndindex(*x.shape):
            values = []
            for sign in (1, -1):
                moved = [v.copy() for v in logits]
                moved[l][index] += sign * step
                value, _, moved_selection = reference(moved, labels, normalizer)
                assert moved_selection == selected, (l, index)
                values.append(value)
            numeric = (values[0] - values[1]) / (2 * step)
            assert numeric == pytest.approx(gradients[l][index], abs=1e-8), (l, index)


def test_the_layers_gradient_matches_central_differences_of_its_own_forward():
    """In Caffe, float32, step 1e-2, wherever the move leaves the selection alone (checked with
    the reference): the gradients are ≤ 1/15 here, the tolerance 1e-4 (the float32 loss's
    rounding over the step gives ~2e-5)."""
    logits, labels = mixed_batch()
    normalizer = positives_of(labels)
    net = loaded(ohem_net(loss_weight=0.7), logits, labels)
    net.forward()
    net.backward()
    analytic = [net.blobs[f"score_{l}"].diff / np.float32(0.7) for l in range(len(SIZES))]
    _, _, selected = reference(logits, labels, normalizer)
    step, checked, attempted = np.float32(1e-2), 0, 0
    for l, x in enumerate(logits):
        param = net.params[f"score_{l}"][0].data
        for index in np.ndindex(*x.shape):
            attempted += 1
            values = []
            for sign in (1, -1):
                moved = [v.copy() for v in logits]
                moved[l][index] += sign * step
                if reference(moved, labels, normalizer)[2] != selected:
                    break
                param[...] = moved[l]
                values.append(net.forward()["loss"].item())
            param[...] = logits[l]
            if len(values) < 2:
                continue
            checked += 1
            numeric = (values[0] - values[1]) / (2 * float(step))
            assert numeric == pytest.approx(float(analytic[l][index]), abs=1e-4), (l, index)
    assert checked >= 0.9 * attempted


# 3. Mining across levels.

@pytest.mark.parametrize("hard_level", [0, 1])
def test_the_hardest_negatives_are_taken_from_whichever_level_holds_them(hard_level):
    """One image, one positive on the other level; three hard negatives (logits +4) on
    hard_level, every other negative easy (−3 or −6). Mining over the whole pyramid takes the
    three; mining per level (with each level's own positives) would take none of them, and 3
    per level would take easy ones from the positive's level."""
    easy_level = 1 - hard_level
    logits = [np.full((1, ANCHORS * CLASSES) + s, -3.0 if l == 0 else -6.0, np.float32)
              for l, s in enumerate(SIZES)]
    labels = [np.zeros((1, ANCHORS) + s, np.float32) for s in SIZES]
    positive = (easy_level, 1, 1, 0)
    labels[easy_level][0, 1, 1, 0] = 2
    logits[easy_level][0, CLASSES:2 * CLASSES, 1, 0] = [0.5, 1.0, -0.5]
    hard = [(hard_level, 1, 1, 1), (hard_level, 1, 0, 1), (hard_level, 0, 1, 0)]
    for l, a, y, x in hard:
        logits[l][0, a * CLASSES:(a + 1) * CLASSES, y, x] = 4.0
    net = loaded(ohem_net(num=1), logits, labels)
    loss = net.forward()["loss"].item()
    net.backward()
    chosen = set()
    for l in range(len(SIZES)):
        diff = net.blobs[f"score_{l}"].diff.reshape(1, ANCHORS, CLASSES, *SIZES[l])
        for a, y, x in zip(*np.nonzero(np.abs(diff[0]).max(axis=1))):
            chosen.add((l, int(a), int(y), int(x)))
    assert chosen == {positive, *hard}
    expected = (np.logaddexp(0, -1.0) + np.logaddexp(0, 0.5) + np.logaddexp(0, -0.5)
                + 3 * CLASSES * np.logaddexp(0, 4.0))
    assert loss == pytest.approx(expected, rel=1e-6)


def test_mine_hard_negatives_breaks_ties_to_the_earlier_level():
    """Equal losses everywhere: the anchors taken are the first candidates in level order."""
    logits = [np.zeros((1, ANCHORS * CLASSES) + s, np.float32) for s in SIZES]
    labels = [np.zeros((1, ANCHORS) + s, np.float32) for s in SIZES]
    labels[1][0, 1, 1, 1] = 1                  # the last anchor of the pyramid: 1 positive
    net = loaded(ohem_net(num=1), logits, labels)
    net.backward()
    level0 = np.abs(net.blobs["score_0"].diff.reshape(ANCHORS, CLASSES, -1)).max(axis=1)
    assert np.flatnonzero(level0[0]).tolist() == [0, 1, 2] and not level0[1].any()
    assert np.count_nonzero(net.blobs["score_1"].diff) == CLASSES


# 4. The diff contract.

def test_propagate_down_false_on_a_level_leaves_its_diff_alone():
    logits, labels = mixed_batch()
    text = ohem_net(loss_weight=0.7, propagate_down=[True, False, False, False, False])
    net = loaded(text, logits, labels)
    names = ["score_0", "score_1", "label_0", "label_1", "positives"]
    for name in names:
        net.blobs[name].diff[...] = SENTINEL
    net.forward()
    for name in names:                          # forward writes no diff
        assert np.all(net.blobs[name].diff == SENTINEL), name
    net.backward()
    _, gradients, _ = reference(logits, labels, positives_of(labels))
    np.testing.assert_allclose(net.blobs["score_0"].diff, np.float32(0.7) * gradients[0],
                               rtol=1e-5, atol=1e-8)
    for name in names[1:]:
        assert np.all(net.blobs[name].diff == SENTINEL), name


def test_force_backward_gets_zeros_for_labels_and_normalizer_and_the_same_gradients():
    logits, labels = mixed_batch()
    plain = loaded(ohem_net(), logits, labels)
    plain.backward()
    net = loaded(ohem_net(force_backward=True), logits, labels)
    for name in ("label_0", "label_1", "positives"):
        net.blobs[name].diff[...] = SENTINEL
    net.forward()
    net.backward()
    for name in ("label_0", "label_1", "positives"):
        assert np.all(net.blobs[name].diff == 0), name
    for l in range(len(SIZES)):
        np.testing.assert_array_equal(net.blobs[f"score_{l}"].diff,
                                      plain.blobs[f"score_{l}"].diff)


def test_backward_uses_the_gradient_forward_kept():
    """Logits rewritten between forward and backward (an in-place layer after the loss would do
    it) do not change the gradient: backward reads no bottom data."""
    logits, labels = mixed_batch()
    net = loaded(ohem_net(), logits, labels)
    net.forward()
    net.params["score_0"][0].data[...] = 0
    net.blobs["label_0"].data[...] = 1
    net.backward()
    _, gradients, _ = reference(logits, labels, positives_of(labels))
    np.testing.assert_allclose(net.blobs["score_0"].diff, gradients[0], rtol=1e-5, atol=1e-8)


# 5. Errors.

@pytest.mark.parametrize("value, level", [(np.nan, 0), (np.inf, 1), (-np.inf, 1)])
def test_non_finite_logits_are_an_error_naming_the_bottom(value, level):
    logits, labels = mixed_batch()
    net = loaded(ohem_net(), logits, labels)
    net.params[f"score_{level}"][0].data[1, 2, 0, 1] = value
    with pytest.raises(InputError, match=rf"bottom\[{level}\] \(cls_score of level {level}\) "
                                         r"holds 1 non-finite value"):
        net.forward()


@pytest.mark.parametrize("value, message", [
    (4, "the first is 4.0"),            # C = 3
    (0.5, "the first is 0.5"),
    (-2, "the first is -2.0"),
    (np.nan, "the first is nan"),
])
def test_labels_outside_background_classes_and_ignore_are_an_error_naming_the_value(value,
                                                                                     message):
    logits, labels = mixed_batch()
    net = loaded(ohem_net(), logits, labels)
    net.blobs["label_1"].data[2, 1, 0, 1] = value
    with pytest.raises(InputError, match=r"bottom\[3\] \(labels of level 1\) holds 1 value\(s\) "
                                         rf"not allowed; {message} at index \(2, 1, 0, 1\): "
                                         r"class-index labels must be integers 0\.\.3 .* or "
                                         r"ignore_label=-1"):
        net.forward()


@pytest.mark.parametrize("param, message", [
    ("{'num_anchors': 2, 'neg_pos_ratios': 3}",
     "unknown param_str key 'neg_pos_ratios'; allowed keys: num_anchors, neg_pos_ratio, "
     "ignore_label"),
    ("{'num_anchors': 0}", "num_anchors = 0 is not allowed: num_anchors must be a whole number >= 1"),
    ("{'num_anchors': True}", "num_anchors = True is not allowed"),
    ("{'num_anchors': 2, 'neg_pos_ratio': 0}",
     "neg_pos_ratio = 0 is not allowed: neg_pos_ratio must be a finite number > 0"),
    ("{'num_anchors': 2, 'neg_pos_ratio': -1}", "neg_pos_ratio = -1 is not allowed"),
    ("{'num_anchors': 2, 'neg_pos_ratio': 1e999}", "neg_pos_ratio = inf is not allowed"),
    ("{'num_anchors': 2, 'neg_pos_ratio': '3'}", "neg_pos_ratio = '3' is not allowed"),
    ("{'num_anchors': 2, 'ignore_label': 0.5}",
     "ignore_label = 0.5 is not allowed: ignore_label must be an integer"),
    ("{'num_anchors': 2, 'ignore_label': None}", "ignore_label = None is not allowed"),
    ("[2, 3]", "param_str must be a dict"),
    ("__import__('os').getcwd()", "is not a JSON object or Python dict literal"),
])
def test_bad_settings_are_an_error_naming_the_key_and_what_it_allows(param, message):
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_net(ohem_net(param=param), cpu=True)


def test_settings_have_the_papers_defaults():
    assert parse_ohem_param_str("") == {"num_anchors": 1, "neg_pos_ratio": 3, "ignore_label": -1}
    assert parse_ohem_param_str(PARAM) == {"num_anchors": 2, "neg_pos_ratio": 3.0,
                                           "ignore_label": -1}


@pytest.mark.parametrize("change, message", [
    (dict(normalizer=None), r"takes 2L \+ 1 bottoms .* got 4 bottom\(s\)"),
    (dict(channels=5), r"bottom\[0\] \(cls_score of level 0\) has shape \(3, 5, 4, 4\); it must "
                       r"be \(N, A\*C, H, W\) with num_anchors A = 2"),
    (dict(label_sizes=((4, 4), (3, 3))),
     r"bottom\[3\] \(labels of level 1\) has shape \(3, 2, 3, 3\); with bottom\[1\] of shape "
     r"\(3, 6, 2, 2\) and num_anchors 2 it must be \(N, A, H, W\) = \(3, 2, 2, 2\)"),
    (dict(normalizer="num_positives"),
     r"bottom\[4\] \(normalizer\) has shape \(3, 1\); it must hold exactly one value"),
])
def test_bottoms_that_do_not_fit_are_an_error_at_set_up(change, message):
    with pytest.raises(InputError, match=message):
        load_net(ohem_net(**change), cpu=True)


@pytest.mark.parametrize("value", [-1.0, np.nan])
def test_a_normalizer_that_is_not_a_count_is_an_error(value):
    logits, labels = mixed_batch()
    net = loaded(ohem_net(), logits, labels)
    net.blobs["num_positives"].data[...] = 0
    net.blobs["num_positives"].data[0, 0] = value
    with pytest.raises(InputError, match=r"bottom\[4\] \(normalizer\) is .*; it must be a "
                                         "finite number >= 0"):
        net.forward()


def test_a_test_phase_net_loads_and_runs_forward():
    """The TEST net of a train/test prototxt: forward only, the same loss."""
    logits, labels = mixed_batch()
    train = loaded(ohem_net(), logits, labels).forward()["loss"].item()
    net = load_net(ohem_net(), caffe.TEST, cpu=True)
    for l, (x, y) in enumerate(zip(logits, labels)):
        net.params[f"score_{l}"][0].data[...] = x
        net.blobs[f"label_{l}"].data[...] = y
    net.blobs["num_positives"].data[...] = np.array([[3], [0], [12]])
    assert net.forward()["loss"].item() == train


def test_a_loss_beyond_float32_is_an_error_saying_non_finite():
    """Finite logits near float32's largest make a loss the scalar top cannot hold: an error,
    not an inf in the log."""
    logits, labels = mixed_batch()
    net = loaded(ohem_net(), logits, labels)
    net.params["score_0"][0].data[0, :CLASSES, 1, 1] = 3e38      # a candidate, mined first
    net.blobs["num_positives"].data[...] = 0                     # divided by max(0, 1)
    with pytest.raises(InputError, match=r"the loss 9(\.\d+)?e\+38 is beyond float32's range "
                                         r"\(the top would be non-finite\)"):
        net.forward()
