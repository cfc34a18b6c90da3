"""The old API names still work for one release, give the same results, and warn with the new
name (focal_loss_layer/deprecation.py; CHANGELOG.md lists them)."""
import importlib
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = old(LOGITS, labels, focusing_parameter=1.5, alpha=0.25, class_weights=WEIGHTS)
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert len(messages) == 2
    assert f"removed in {REMOVED_IN}; use focal_loss_layer." in messages[0]
    assert new.__name__ in messages[0] and "use class_balances=" in messages[1]
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


def test_old_netspec_names_warn_and_write_the_same_layer():
    import caffe

    netspec = importlib.import_module("focal_loss_layer.netspec")

    def net(builder, **settings):
        n = caffe.NetSpec()
        n.score, n.label = caffe.layers.Input(shape=[dict(dim=[2, 3]), dict(dim=[2])], ntop=2)
        n.loss = builder(n.score, n.label, **settings)
        return str(n.to_proto())

    for old, new, settings in ((netspec.focal_loss, netspec.sigmoid_focal_loss_layer,
                                dict(alpha=0.25, num_anchors=1)),
                               (netspec.softmax_focal_loss, netspec.softmax_focal_loss_layer,
                                dict(ignore_label=255))):
        with pytest.warns(DeprecationWarning, match=f"use focal_loss_layer.netspec.{new.__name__}"):
            written = net(old, **settings)
        assert written == net(new, **settings)


def test_the_package_keeps_exporting_the_old_names():
    import focal_loss_layer
    assert focal_loss_layer.sigmoid_focal_loss is core.sigmoid_focal_loss
    assert focal_loss_layer.softmax_focal_loss is softmax_core.softmax_focal_loss
    assert focal_loss_layer.sigmoid_focal_loss_and_gradient is core.sigmoid_focal_loss_and_gradient


def test_the_repository_itself_uses_only_the_new_names():
    """The old names are for users' code; the package, tests, examples and benchmarks use the new
    ones (a DeprecationWarning from our own code would be noise for everyone)."""
    import os
    import re
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    old_use = re.compile(r"(?<![\w.])(sigmoid_focal_loss|softmax_focal_loss)(?![\w])\s*[(,\n]"
                         r"|netspec import .*(?<![\w])focal_loss(?![\w])|\bclass_weights=")
    found = []
    for folder in ("focal_loss_layer", "tests", "examples", "benchmarks", "tools"):
        for directory, _, files in os.walk(os.path.join(root, folder)):
            for name in files:
                path = os.path.join(directory, name)
                # deprecation.py makes the aliases, the package's __init__ exports them.
                if (not name.endswith(".py") or name in ("deprecation.py", "test_deprecation.py")
                        or os.path.relpath(path, root) == os.path.join("focal_loss_layer", "__init__.py")):
                    continue
                with open(path, encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        code = line.split("#")[0]
                        if old_use.search(code + "\n") and "deprecated_alias" not in code:
                            found.append(f"{os.path.relpath(path, root)}:{number}: {line.strip()}")
    assert found == []
