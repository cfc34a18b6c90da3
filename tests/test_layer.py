"""FocalLossLayer inside real caffe.Net: gradients, loss_weight, Caffe's own SigmoidCrossEntropyLoss,
force_backward, reshape, and the documented errors."""
import json

import caffe
import numpy as np
import pytest
from caffe_nets import (
    check_force_backward_leaves_bottoms_and_zeroes_label_diff,
    focal_layer,
    input_net,
    load_net,
)
from cases import make_case, naive_kwargs
from naive_reference import naive_focal_loss

SCE_LAYER = ('layer { name: "sce" type: "SigmoidCrossEntropyLoss" bottom: "score" '
             'bottom: "label" top: "sce" loss_weight: 1 }\n')


def focal_net(logits_shape, labels_shape, settings=None, loss_weight=1.0, extra="", **kw):
    param_str = json.dumps(settings or {})
    return load_net(input_net(logits_shape, labels_shape,
                              focal_layer(param_str, loss_weight=loss_weight) + extra, **kw))


def run(net, logits, labels):
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    out = net.forward()
    net.backward()
    return out, net.blobs["score"].diff.copy()


def test_python_layer_and_focal_layer_are_available():
    assert "Python" in caffe.layer_type_list()
    net = focal_net((2, 3), (2, 3))
    assert type(net.layers[list(net._layer_names).index("loss")]).__name__ == "FocalLossLayer"


@pytest.mark.parametrize("settings, form, shape", [
    ({"focusing_parameter": 2, "alpha": 0.25}, "indices", (2, 3, 4)),
    ({"focusing_parameter": 0.5, "ignore_label": -1, "normalization": "valid"}, "targets", (3, 4)),
    ({"focusing_parameter": 1.5, "class_balances": [2, 0.5, 1], "label_smoothing": 0.1,
      "normalization": "positives"}, "indices", (2, 3, 2, 2)),
])
def test_float32_gradient_check_through_caffe_net_with_loss_weight(settings, form, shape):
    """Caffe-style check: finite differences of the net's own forward (float32, step 1e-2)."""
    loss_weight = 2.5
    rng = np.random.default_rng(0)
    logits, labels = make_case(rng, form, shape=shape, ignore_label=settings.get("ignore_label"),
                               scale=2.0)
    labels_shape = labels.shape
    net = focal_net(shape, labels_shape, settings, loss_weight=loss_weight)
    _, analytic = run(net, logits, labels)
    step, numeric = 1e-2, np.zeros(shape)
    for index in np.ndindex(*shape):
        values = []
        for delta in (step, -step):
            x = logits.copy()
            x[index] += delta
            net.blobs["score"].data[...] = x
            values.append(loss_weight * net.forward()["loss"].item())
        numeric[index] = (values[0] - values[1]) / (2 * step)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1.0)
    assert np.max(np.abs(analytic - numeric) / scale) < 1e-3
    _, exact = naive_focal_loss(logits, labels, **naive_kwargs(settings, shape[1]))
    np.testing.assert_allclose(analytic, loss_weight * exact, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("shape", [(8, 5), (2, 4, 3, 5)])
def test_gamma_zero_equals_caffe_sigmoid_cross_entropy(shape):
    rng = np.random.default_rng(1)
    logits, targets = make_case(rng, "targets", shape=shape, scale=4.0)
    net = focal_net(shape, shape, {"focusing_parameter": 0}, extra=SCE_LAYER)
    # Both losses share one diff in this net; compare each layer's own contribution.
    out = run(net, logits, targets)[0]
    np.testing.assert_allclose(out["loss"], out["sce"], rtol=2e-6)
    both = net.blobs["score"].diff.copy()
    sce_only = load_net(input_net(shape, shape, SCE_LAYER))
    _, sce_grad = run(sce_only, logits, targets)
    np.testing.assert_allclose(both, 2 * sce_grad, rtol=1e-5, atol=1e-8)


def test_loss_and_gradient_match_the_naive_loop_in_float32():
    rng = np.random.default_rng(2)
    settings = {"focusing_parameter": 2, "alpha": 0.25, "ignore_label": 255,
                "normalization": "positives", "class_balances": {"1": 2.0}}
    logits, labels = make_case(rng, "indices", shape=(4, 3, 5), ignore_label=255)
    out, grad = run(focal_net((4, 3, 5), (4, 5), settings), logits, labels)
    loss, exact = naive_focal_loss(logits.astype(np.float32), labels, **naive_kwargs(settings))
    np.testing.assert_allclose(out["loss"].item(), loss, rtol=1e-5)
    np.testing.assert_allclose(grad, exact, rtol=1e-4, atol=1e-7)


def test_loss_weight_reaches_the_gradient():
    rng = np.random.default_rng(3)
    logits, labels = make_case(rng, "targets", shape=(3, 4))
    _, unit = run(focal_net((3, 4), (3, 4)), logits, labels)
    _, weighted = run(focal_net((3, 4), (3, 4), loss_weight=2.5), logits, labels)
    np.testing.assert_allclose(weighted, 2.5 * unit, rtol=1e-6)


def test_force_backward_zeroes_label_diff_and_leaves_bottoms_unchanged():
    rng = np.random.default_rng(4)
    logits, labels = make_case(rng, "targets", shape=(3, 4))
    net = focal_net((3, 4), (3, 4), force_backward=True)
    check_force_backward_leaves_bottoms_and_zeroes_label_diff(net, logits, labels)


def test_ignored_positions_get_zero_diff():
    rng = np.random.default_rng(5)
    logits, labels = make_case(rng, "indices", shape=(2, 3, 6), ignore_label=-1)
    _, grad = run(focal_net((2, 3, 6), (2, 1, 6), {"ignore_label": -1}), logits,
                  labels.reshape(2, 1, 6))
    ignored = np.broadcast_to((labels == -1)[:, None, :], grad.shape)
    assert ignored.any() and np.all(grad[ignored] == 0) and np.all(grad[~ignored] != 0)


def test_reshape_copes_with_batch_size_changing_between_calls():
    net = focal_net((4, 3), (4,), {"normalization": "batch_size"})
    rng = np.random.default_rng(6)
    for batch in (4, 7, 2):
        logits, labels = make_case(rng, "indices", shape=(batch, 3))
        net.blobs["score"].reshape(batch, 3)
        net.blobs["label"].reshape(batch)
        net.reshape()
        out, grad = run(net, logits, labels)
        loss, exact = naive_focal_loss(logits.astype(np.float32), labels)
        assert grad.shape == (batch, 3)
        np.testing.assert_allclose(out["loss"].item(), loss, rtol=1e-5)
        np.testing.assert_allclose(grad, exact, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("settings, message", [
    ({"gamma": 2}, "unknown param_str key 'gamma'"),
    ({"alpha": 3}, "alpha = 3 is not allowed"),
    ({"class_balances": [1, 2]}, "class_balances has 2 weights but the logits have C=3 classes"),
    ({"class_balances": {"9": 1}}, "class_balances names class id 9, but class ids run 1..3"),
])
def test_bad_param_str_fails_at_net_setup(settings, message):
    with pytest.raises(Exception, match=message):
        focal_net((2, 3), (2, 3), settings)


def test_code_in_param_str_does_not_run_under_caffe(tmp_path):
    marker = tmp_path / "created"
    text = input_net((2, 3), (2, 3), focal_layer(f"__import__('os').system('touch {marker}')"))
    with pytest.raises(Exception, match="not a JSON object or Python dict literal"):
        load_net(text)
    assert not marker.exists()


def test_label_shape_fitting_neither_form_fails_at_setup():
    with pytest.raises(Exception, match=r"bottom\[1\] \(labels\) has shape \(2, 2\), which fits neither"):
        focal_net((2, 3), (2, 2))


@pytest.mark.parametrize("labels, settings, message", [
    ([[0, 1, 2], [0, 0, 0]], {}, r"the first is 2.0 at index \(0, 2\): per-class targets must lie in \[0, 1\]"),
    ([[0, 1, -1], [0, 0, 0]], {"ignore_label": 255}, r"the first is -1.0 .* or ignore_label=255"),
])
def test_bad_labels_fail_at_forward(labels, settings, message):
    net = focal_net((2, 3), (2, 3), settings)
    net.blobs["label"].data[...] = labels
    with pytest.raises(Exception, match=message):
        net.forward()


def test_bad_index_labels_fail_at_forward():
    net = focal_net((2, 3), (2,))
    net.blobs["label"].data[...] = [1, 4]
    with pytest.raises(Exception, match=r"the first is 4.0 at index \(1,\): class-index labels "
                                        r"must be integers 0..3"):
        net.forward()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_logits_fail_with_count_and_first_index(bad):
    net = focal_net((2, 3), (2, 3))
    net.blobs["score"].data[...] = 0
    net.blobs["score"].data[1, 2] = bad
    net.blobs["score"].data[1, 0] = bad
    with pytest.raises(Exception, match=r"holds 2 non-finite value\(s\) \(NaN or ±inf\); the first "
                                        rf"is {bad} at index \(1, 0\)"):
        net.forward()


def test_second_backward_after_one_forward_gives_the_same_gradient():
    """Backward recomputes the gradient from the bottoms, so a repeated backward (after an
    upstream in-place layer rewrote the diff) gives the same values, scaled once."""
    rng = np.random.default_rng(7)
    logits, labels = make_case(rng, "indices", shape=(3, 4, 5))
    net = focal_net((3, 4, 5), (3, 5), {"alpha": 0.25}, loss_weight=2.5)
    _, first = run(net, logits, labels)
    net.blobs["score"].diff[...] = -1.0   # as an upstream in-place layer might leave it
    net.backward()
    np.testing.assert_array_equal(net.blobs["score"].diff, first)
    _, exact = naive_focal_loss(logits.astype(np.float32), labels, gamma=2.0, alpha=0.25)
    np.testing.assert_allclose(first, 2.5 * exact, rtol=1e-4, atol=1e-7)
