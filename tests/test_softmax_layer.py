"""SoftmaxFocalLossLayer inside real caffe.Net: equal to Caffe's C++ SoftmaxWithLoss at γ = 0
(loss and gradient, every normalization, with and without ignore_label, with spatial dims),
gradients, loss_weight, force_backward, reshape, and the documented errors."""
import json

import caffe
import numpy as np
import pytest
from caffe_nets import check_force_backward_leaves_bottoms_and_zeroes_label_diff, input_net, load_net
from cases import make_softmax_case, softmax_kwargs
from gradcheck import assert_gradient_close, numeric_gradient
from naive_reference import naive_softmax_focal_loss


def softmax_focal_layer(settings=None, loss_weight=1.0, bottoms=("score", "label"), name="loss"):
    param_str = json.dumps(settings or {}).replace('"', '\\"')
    bottom = " ".join(f'bottom: "{b}"' for b in bottoms)
    return (f'layer {{ name: "{name}" type: "Python" {bottom} top: "{name}"\n'
            f'  python_param {{ module: "focal_loss_layer" layer: "SoftmaxFocalLossLayer"\n'
            f'    param_str: "{param_str}" }}\n  loss_weight: {loss_weight} }}\n')


def softmax_with_loss_layer(normalization=None, ignore_label=None, loss_weight=1.0, name="loss"):
    loss_param = "".join([f" normalization: {normalization.upper()}" if normalization else "",
                          f" ignore_label: {ignore_label}" if ignore_label is not None else ""])
    return (f'layer {{ name: "{name}" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" '
            f'top: "{name}" loss_weight: {loss_weight} loss_param {{{loss_param} }} }}\n')


def net_with(layers, logits_shape, labels_shape, **kw):
    return load_net(input_net(logits_shape, labels_shape, layers, **kw))


def run(net, logits, labels, loss="loss"):
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    out = net.forward()
    net.backward()
    return out[loss].item(), net.blobs["score"].diff.copy()


def test_the_layer_is_created_by_caffe_from_the_package():
    net = net_with(softmax_focal_layer(), (2, 3), (2,))
    assert type(net.layers[list(net._layer_names).index("loss")]).__name__ == "SoftmaxFocalLossLayer"


@pytest.mark.parametrize("normalization", ["valid", "full", "batch_size", "none", None])
@pytest.mark.parametrize("ignore_label", [None, 255, 0])
@pytest.mark.parametrize("logits_shape, labels_shape", [
    ((6, 5), (6,)), ((3, 5, 4, 6), (3, 4, 6)), ((3, 5, 4, 6), (3, 1, 4, 6)), ((2, 4, 7), (2, 1, 7)),
], ids=["NC", "NCHW-NHW", "NCHW-N1HW", "NCL-N1L"])
def test_gamma_zero_equals_caffe_softmax_with_loss(normalization, ignore_label, logits_shape,
                                                   labels_shape):
    """Same blobs, loss_weight 2 in both nets: the same loss and the same bottom diff. None:
    neither names a normalization (both default to VALID)."""
    rng = np.random.default_rng(1)
    logits, labels = make_softmax_case(rng, logits_shape, ignore_label=ignore_label, ignored=0.3)
    labels = labels.reshape(labels_shape)
    settings = {"focusing_parameter": 0}
    if normalization:
        settings["normalization"] = normalization
    if ignore_label is not None:
        settings["ignore_label"] = ignore_label
    ours = run(net_with(softmax_focal_layer(settings, loss_weight=2), logits_shape, labels_shape),
               logits, labels)
    caffes = run(net_with(softmax_with_loss_layer(normalization, ignore_label, loss_weight=2),
                          logits_shape, labels_shape), logits, labels)
    np.testing.assert_allclose(ours[0], caffes[0], rtol=2e-6)
    np.testing.assert_allclose(ours[1], caffes[1], rtol=1e-5, atol=1e-7 * np.abs(caffes[1]).max())
    assert np.abs(caffes[1]).max() > 0.01


@pytest.mark.parametrize("settings, shape", [
    ({"focusing_parameter": 2, "alpha": 0.25}, (2, 3, 4)),
    ({"focusing_parameter": 0.5, "ignore_label": -1, "normalization": "full"}, (3, 4)),
    ({"focusing_parameter": 1.5, "class_balances": {"0": 0.2, "2": 3}, "ignore_label": 255,
      "normalization": "batch_size"}, (2, 3, 2, 2)),
])
def test_float32_gradient_check_through_caffe_net_with_loss_weight(settings, shape):
    """Caffe-style check: finite differences of the net's own forward (float32, step 1e-2), and
    the gradient against the naive per-position loop."""
    loss_weight = 2.5
    logits, labels = make_softmax_case(np.random.default_rng(0), shape,
                                       ignore_label=settings.get("ignore_label"), scale=2.0)
    net = net_with(softmax_focal_layer(settings, loss_weight=loss_weight), shape, labels.shape)
    _, analytic = run(net, logits, labels)

    def weighted_loss(x):
        net.blobs["score"].data[...] = x
        return loss_weight * net.forward()["loss"].item()
    numeric = numeric_gradient(weighted_loss, logits.copy(), 1e-2)
    assert_gradient_close(analytic, numeric, logits, threshold=1e-3)
    _, exact = naive_softmax_focal_loss(logits.astype(np.float32), labels,
                                        **softmax_kwargs(settings, shape[1]))
    np.testing.assert_allclose(analytic, loss_weight * exact, rtol=1e-4, atol=1e-6)


def test_loss_matches_the_naive_loop_in_float32():
    settings = {"focusing_parameter": 2, "alpha": 0.25, "ignore_label": 255,
                "class_balances": [1.0, 2.0, 0.5]}
    logits, labels = make_softmax_case(np.random.default_rng(2), (4, 3, 5), ignore_label=255)
    loss, grad = run(net_with(softmax_focal_layer(settings), (4, 3, 5), (4, 5)), logits, labels)
    naive_loss, exact = naive_softmax_focal_loss(logits.astype(np.float32), labels,
                                                 **softmax_kwargs(settings, 3))
    np.testing.assert_allclose(loss, naive_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, exact, rtol=1e-4, atol=1e-7)


def test_force_backward_zeroes_label_diff_and_leaves_bottoms_unchanged():
    logits, labels = make_softmax_case(np.random.default_rng(4), (3, 4))
    net = net_with(softmax_focal_layer(), (3, 4), (3,), force_backward=True)
    check_force_backward_leaves_bottoms_and_zeroes_label_diff(net, logits, labels)


def test_reshape_copes_with_batch_and_spatial_size_changing_between_calls():
    net = net_with(softmax_focal_layer({"ignore_label": -1}), (2, 3, 4), (2, 4))
    rng = np.random.default_rng(6)
    for batch, width in ((2, 4), (5, 1), (1, 9)):
        logits, labels = make_softmax_case(rng, (batch, 3, width), ignore_label=-1)
        net.blobs["score"].reshape(batch, 3, width)
        net.blobs["label"].reshape(batch, width)
        net.reshape()
        loss, grad = run(net, logits, labels)
        expected, exact = naive_softmax_focal_loss(logits.astype(np.float32), labels,
                                                   ignore_label=-1)
        assert grad.shape == (batch, 3, width)
        np.testing.assert_allclose(loss, expected, rtol=1e-5)
        np.testing.assert_allclose(grad, exact, rtol=1e-4, atol=1e-7)


def test_second_backward_after_one_forward_gives_the_same_gradient():
    logits, labels = make_softmax_case(np.random.default_rng(7), (3, 4, 5))
    net = net_with(softmax_focal_layer({"alpha": 0.25}, loss_weight=2.5), (3, 4, 5), (3, 5))
    _, first = run(net, logits, labels)
    net.blobs["score"].diff[...] = -1.0   # as an upstream in-place layer might leave it
    net.backward()
    np.testing.assert_array_equal(net.blobs["score"].diff, first)


@pytest.mark.parametrize("settings, message", [
    ({"gamma": 2}, "unknown param_str key 'gamma' (did you mean 'focusing_parameter'?)"),
    ({"num_anchors": 9}, "param_str key 'num_anchors' is sigmoid-only"),
    ({"label_smoothing": 0.1}, "param_str key 'label_smoothing' is sigmoid-only"),
    ({"normalization": "positives"}, "normalization = 'positives' is not allowed for "
                                     "SoftmaxFocalLossLayer: 'positives' is sigmoid-only"),
    ({"alpha": 3}, "alpha = 3 is not allowed"),
    ({"class_balances": [1, 2]}, "class_balances has 2 weights but the logits have C=3 classes"),
    ({"class_balances": {"3": 1}}, "class_balances names class id 3, but class ids run 0..2"),
])
def test_bad_param_str_fails_at_net_setup(settings, message):
    with pytest.raises(Exception) as raised:
        net_with(softmax_focal_layer(settings), (2, 3), (2,))
    assert message in str(raised.value)


def test_code_in_param_str_does_not_run_under_caffe(tmp_path):
    marker = tmp_path / "created"
    layer = softmax_focal_layer().replace('param_str: "{}"',
                                          f'param_str: "__import__(\'os\').system(\'touch {marker}\')"')
    with pytest.raises(Exception, match="not a JSON object or Python dict literal"):
        net_with(layer, (2, 3), (2,))
    assert not marker.exists()


def test_three_bottoms_are_refused_at_setup():
    with pytest.raises(Exception, match=r"SoftmaxFocalLossLayer takes 2 bottoms \(logits, labels\) "
                                        r"and 1 top \(loss\); got 3 bottom\(s\)"):
        net_with(softmax_focal_layer(bottoms=("score", "label", "label")), (2, 3), (2,))


def test_per_class_label_shape_is_refused_at_setup():
    with pytest.raises(Exception, match=r"bottom\[1\] \(labels\) has shape \(2, 3\), which does "
                                        r"not fit logits of shape \(2, 3\)"):
        net_with(softmax_focal_layer(), (2, 3), (2, 3))


@pytest.mark.parametrize("labels, settings, message", [
    ([1, 3], {}, r"the first is 3.0 at index \(1,\): class labels must be integers 0..2"),
    ([-1, 0], {"ignore_label": 255}, r"the first is -1.0 .* or ignore_label=255"),
])
def test_bad_labels_fail_at_forward(labels, settings, message):
    net = net_with(softmax_focal_layer(settings), (2, 3), (2,))
    net.blobs["label"].data[...] = labels
    with pytest.raises(Exception, match=message):
        net.forward()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_logits_fail_even_at_an_ignored_position(bad):
    """The net diverged: said with the count and first index, whatever the labels."""
    net = net_with(softmax_focal_layer({"ignore_label": 1}), (2, 3), (2,))
    net.blobs["label"].data[...] = [0, 1]
    net.blobs["score"].data[1, 2] = bad
    with pytest.raises(Exception, match=rf"holds 1 non-finite value\(s\) \(NaN or ±inf\); the "
                                        rf"first is {bad} at index \(1, 2\)"):
        net.forward()


def test_phase_test_net_forward_gives_the_loss():
    logits, labels = make_softmax_case(np.random.default_rng(8), (2, 3, 4))
    net = load_net(input_net((2, 3, 4), (2, 4), softmax_focal_layer()), phase=caffe.TEST)
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    expected, _ = naive_softmax_focal_loss(logits.astype(np.float32), labels)
    np.testing.assert_allclose(net.forward()["loss"].item(), expected, rtol=1e-5)


class ShapeOnlyBlob:
    """Stands in for a pycaffe blob: .shape, .count and .reshape, and .data/.diff that fail (in
    GPU-mode Caffe they copy the blob to the host)."""

    def __init__(self, shape):
        self.shape = list(shape)
        self.count = int(np.prod(shape))

    def reshape(self, *shape):
        self.shape = list(shape)

    @property
    def data(self):
        raise AssertionError("reshape read .data")

    @property
    def diff(self):
        raise AssertionError("reshape read .diff")


def test_reshape_reads_only_blob_shapes():
    net = net_with(softmax_focal_layer(), (2, 3, 4), (2, 4))
    layer = net.layers[list(net._layer_names).index("loss")]
    top = ShapeOnlyBlob((7,))
    for logits_shape, labels_shape in (((5, 3, 6), (5, 1, 6)), ((5, 3, 6), (5, 6))):
        layer.reshape([ShapeOnlyBlob(logits_shape), ShapeOnlyBlob(labels_shape)], [top])
        assert top.shape == [1] and layer.kernel.shapes == (logits_shape, labels_shape)
