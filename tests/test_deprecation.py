"""The old API names still work for one release, give the same results, and warn with the new
name (focal_loss_layer/deprecation.py; CHANGELOG.md lists them)."""
import warnings

import numpy as np
import pytest

from focal_loss_layer import core, softmax_core
from focal_loss_layer.deprecation import REMOVED_IN

RNG = np.random.default_rng(3)
LOGITS = RNG.normal(size=(4, 3, 5))
TARGETS = (RNG.random((4, 3, 5)) < 0.3).astype(np.float64)
CLASSES = RNG.integers(0, 3, size=(4, 5))
WEIGHTS = np.array([0.5, 1.0, 2.0])


def _same(old_result, new_result):
    assert old_result[0] == new_result[0]
    np.testing.assert_array_equal(old_result[1], new_result[1])


@pytest.mark.parametrize("old, new, labels", [
    (core.sigmoid_focal_loss, core.sigmoid_focal_loss_and_gradient, TARGETS),
    (softmax_core.softmax_focal_loss, softmax_core.softmax_focal_loss_and_gradient, CLASSES),
])
def test_old_function_names_warn_and_give_the_same_result(old, new, labels):
    with pytest.warns(DeprecationWarning, match=f"removed in {REMOVED_IN}; use .*{new.__name__}"):
        result = old(LOGITS, labels, focusing_parameter=1.5, alpha=0.25, class_weights=WEIGHTS)
    _same(result, new(LOGITS, labels, focusing_parameter=1.5, alpha=0.25, class_balances=WEIGHTS))


def test_the_old_keyword_alone_warns_and_names_the_new_one():
    with pytest.warns(DeprecationWarning, match="class_weights= is deprecated.*use class_balances="):
        old = core.term_coefficients(TARGETS, class_weights=WEIGHTS)
    new = core.term_coefficients(TARGETS, class_balances=WEIGHTS)
    for a, b in zip(old, new):
        np.testing.assert_array_equal(a, b)
    with pytest.warns(DeprecationWarning, match="class_balances="):
        old = softmax_core.position_weights(CLASSES, class_weights=WEIGHTS)
    np.testing.assert_array_equal(old, softmax_core.position_weights(CLASSES, class_balances=WEIGHTS))


def test_the_warning_points_at_the_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        core.sigmoid_focal_loss(LOGITS, TARGETS)
        core.term_coefficients(TARGETS, class_weights=WEIGHTS)
    assert [w.filename for w in caught] == [__file__, __file__]


def test_old_and_new_keyword_together_is_an_error():
    with pytest.raises(TypeError, match="both class_weights= .* and class_balances="), \
            pytest.warns(DeprecationWarning):
        core.sigmoid_focal_loss(LOGITS, TARGETS, class_weights=WEIGHTS, class_balances=WEIGHTS)
    with pytest.raises(TypeError, match="unexpected keyword argument.*'class_wieghts'"):
        core.term_coefficients(TARGETS, class_wieghts=WEIGHTS)


def test_new_names_warn_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        core.sigmoid_focal_loss_and_gradient(LOGITS, TARGETS, class_balances=WEIGHTS)
        softmax_core.softmax_focal_loss_and_gradient(LOGITS, CLASSES, class_balances=WEIGHTS)


def test_ignore_label_in_the_sigmoid_core_skips_those_logits_as_the_layer_does():
    marked = np.where(RNG.random(TARGETS.shape) < 0.2, -1.0, TARGETS)
    by_label = core.sigmoid_focal_loss_and_gradient(LOGITS, marked, ignore_label=-1, normalization="valid")
    valid = marked != -1
    by_mask = core.sigmoid_focal_loss_and_gradient(LOGITS, np.where(valid, marked, 0.0), valid=valid,
                                                   normalization="valid")
    _same(by_label, by_mask)
    assert np.all(by_label[1][~valid] == 0)
