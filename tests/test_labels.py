"""Label forms: which shapes are which form, which values are allowed, what targets they mean."""
import numpy as np
import pytest

from focal_loss_layer.errors import InputError, ParamError
from focal_loss_layer.labels import INDICES, TARGETS, check_label_form, label_form, read_labels


@pytest.mark.parametrize("logits, labels, form", [
    ((4, 3), (4, 3), TARGETS),
    ((4, 3), (4,), INDICES),
    ((4, 3), (4, 1), INDICES),
    ((2, 5, 6, 7), (2, 5, 6, 7), TARGETS),
    ((2, 5, 6, 7), (2, 6, 7), INDICES),
    ((2, 5, 6, 7), (2, 1, 6, 7), INDICES),
    ((2, 1, 6), (2, 1, 6), TARGETS),  # C = 1: identical shapes always mean targets
])
def test_form_is_told_apart_by_shape(logits, labels, form):
    assert label_form(logits, labels) == form


@pytest.mark.parametrize("logits, labels", [((4, 3), (3,)), ((4, 3), (4, 2)), ((2, 5, 6, 7), (2, 7, 6)),
                                            ((2, 5, 6, 7), (2, 5, 6))])
def test_shape_fitting_neither_form_is_an_error_listing_both(logits, labels):
    with pytest.raises(InputError, match=r"fits neither label form.*per-class targets need shape "
                                         r".*class indices need shape"):
        label_form(logits, labels)


def test_index_labels_become_one_hot_targets_with_background_all_negative():
    labels = np.array([[0, 2], [3, 1]], dtype=np.float32)  # (N=2, W=2)
    read = read_labels(labels, (2, 3, 2))
    assert read.valid is None
    np.testing.assert_array_equal(read.targets[:, :, 0], [[0, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(read.targets[:, :, 1], [[0, 1, 0], [1, 0, 0]])


def test_ignored_index_skips_the_whole_position():
    labels = np.array([[1, -1]], dtype=np.float32)
    read = read_labels(labels, (1, 3, 2), ignore_label=-1)
    np.testing.assert_array_equal(read.valid[0], [[True, False]] * 3)


def test_ignored_target_skips_one_logit_and_its_target_reads_zero():
    labels = np.array([[1, 255, 0.5]], dtype=np.float32)
    read = read_labels(labels, (1, 3), ignore_label=255)
    np.testing.assert_array_equal(read.valid, [[True, False, True]])
    np.testing.assert_array_equal(read.targets, [[1, 0, 0.5]])


@pytest.mark.parametrize("labels, shape, ignore, message", [
    ([[0.5, 1.5]], (1, 2), None, r"the first is 1.5 at index \(0, 1\): per-class targets must lie in \[0, 1\] \(no ignore_label is set\)"),
    ([[0.5, -1]], (1, 2), 255, r"the first is -1.0 at index \(0, 1\): per-class targets must lie in \[0, 1\] or ignore_label=255"),
    ([[np.nan, 0]], (1, 2), None, r"the first is nan at index \(0, 0\)"),
    ([3, 1], (2, 2), None, r"the first is 3.0 at index \(0,\): class-index labels must be integers 0..2 \(0 = background\)"),
    ([1, 0.5], (2, 2), -1, r"the first is 0.5 at index \(1,\): class-index labels must be integers 0..2 .* or ignore_label=-1"),
    ([1, -2, -2], (3, 2), -1, r"holds 2 value\(s\) not allowed; the first is -2.0 at index \(1,\)"),
])
def test_bad_label_values_name_value_index_and_allowed_set(labels, shape, ignore, message):
    with pytest.raises(InputError, match=message):
        read_labels(np.array(labels, dtype=np.float64), shape, ignore_label=ignore)


@pytest.mark.parametrize("ignore_label", [0, 1])
def test_an_ignore_label_inside_the_target_range_is_refused_for_per_class_targets(ignore_label):
    with pytest.raises(ParamError, match=f"ignore_label = {ignore_label} is not allowed with "
                                         r"per-class targets.*outside \[0, 1\]"):
        check_label_form((2, 3), (2, 3), ignore_label)


@pytest.mark.parametrize("ignore_label", [-1, 2, 255, None])
def test_an_ignore_label_outside_the_target_range_is_fine_for_per_class_targets(ignore_label):
    assert check_label_form((2, 3), (2, 3), ignore_label) == TARGETS


def test_an_ignore_label_of_zero_is_fine_for_class_indices():
    assert check_label_form((2, 3), (2,), 0) == INDICES


def test_one_class_labels_of_the_logits_shape_are_targets_and_the_errors_say_why():
    """C = 1: (N, 1) is both the index shape and the targets shape; the documented rule (targets)
    is what the errors explain, for ignore_label and for a value outside [0, 1]."""
    assert check_label_form((4, 1), (4, 1), None) == TARGETS
    assert check_label_form((2, 3, 5), (2, 3, 5), None, num_anchors=3) == TARGETS
    rule = "with one class the logits' shape is also the class-index shape"
    with pytest.raises(ParamError, match=r"ignore_label = 0 is not allowed with per-class targets "
                                         rf"\(bottom\[1\] has the logits' shape \(4, 1\); {rule}"):
        check_label_form((4, 1), (4, 1), 0)
    with pytest.raises(InputError, match=rf"must lie in \[0, 1\] \({rule}.*index 1 and 0 are the "
                                         "targets 1 and 0"):
        read_labels(np.array([[0.0], [2.0]]), (2, 1))
    # the index form, (N,), keeps its own rule: ignore_label 0 would be background there
    assert check_label_form((4, 1), (4,), 255) == INDICES
    # with C > 1 the messages say nothing of the rule
    with pytest.raises(ParamError) as raised:
        check_label_form((4, 2), (4, 2), 1)
    assert rule not in str(raised.value)
