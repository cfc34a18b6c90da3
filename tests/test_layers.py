"""Both layers inside real caffe.Net, each test run for each row of one table (cases.LAYERS):
equal to Caffe's C++ twin at γ = 0 (SigmoidCrossEntropyLoss, SoftmaxWithLoss), gradients against
the net's own forward and the naive loop, loss_weight, force_backward, ignored positions, reshape,
a TEST net, the documented errors; then what only one layer has."""
import caffe
import numpy as np
import pytest
from caffe_nets import focal_layer, input_net, load_net
from cases import LABEL_FORMS, LAYERS, SIGMOID, SOFTMAX, layer_id
from gradcheck import assert_gradient_close, numeric_gradient

from focal_loss_layer.check.nets import caffe_loss


def layer_net(layer, logits_shape, labels_shape, settings=None, loss_weight=1.0, phase=None, **kw):
    """Input blobs 'score' and 'label' (force_backward unless kw says otherwise) and the layer."""
    text = focal_layer(settings or {}, loss_weight=loss_weight, layer=layer.name)
    return load_net(input_net(logits_shape, labels_shape, text, **kw), phase)


def run(net, logits, labels):
    """(loss, logits' diff) after forward and backward on these bottoms."""
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    loss = net.forward()["loss"].item()
    net.backward()
    return loss, net.blobs["score"].diff.copy()


@pytest.mark.parametrize("layer", LAYERS, ids=layer_id)
def test_caffe_creates_the_layer_from_the_package(layer):
    assert "Python" in caffe.layer_type_list()
    net = layer_net(layer, (2, 3), (2,))
    assert type(net.layers[list(net._layer_names).index("loss")]).__name__ == layer.name


def twin_case(layer, logits_shape, labels_shape, normalization=None, ignore_label=None, id="",
              rtol=1e-5, atol=None, **inputs):
    """γ = 0 and, where given, the same normalization and ignore_label in the twin's loss_param;
    rtol and atol (None: 1e-7 of the twin's largest |diff|) for the diffs; inputs:
    CaffeLayer.inputs' keywords."""
    settings, loss_param = {"focusing_parameter": 0}, {}
    if normalization:
        settings["normalization"], loss_param["normalization"] = normalization, normalization.upper()
    if ignore_label is not None:
        settings["ignore_label"] = loss_param["ignore_label"] = ignore_label
    case = dict(settings=settings, loss_param=loss_param, logits_shape=logits_shape,
                labels_shape=labels_shape, inputs=inputs, rtol=rtol, atol=atol)
    return pytest.param(layer, case, id=f"{layer.name}-{normalization}-{ignore_label}-{id}")


SOFTMAX_TWIN_SHAPES = {"NC": ((6, 5), (6,)), "NCHW-NHW": ((3, 5, 4, 6), (3, 4, 6)),
                       "NCHW-N1HW": ((3, 5, 4, 6), (3, 1, 4, 6)), "NCL-N1L": ((2, 4, 7), (2, 1, 7))}
TWIN_CASES = [
    # Per-class targets at SigmoidCrossEntropyLoss's default normalization (BATCH_SIZE). Its
    # float32 σ(x) − t and the layer's closed form differ by up to 5e-5 relative on entries
    # near 1e-4 (at logits of ±8).
    *[twin_case(SIGMOID, shape, shape, id=f"targets-{len(shape)}d", rtol=2e-5, atol=2e-8,
                form="targets", scale=4.0)
      for shape in ((8, 5), (2, 4, 3, 5))],
    # Every normalization (None: neither names one, both default to VALID), with and without
    # ignore_label (0: a class id), with spatial dims and both label layouts.
    *[twin_case(SOFTMAX, logits_shape, labels_shape, normalization, ignore_label, id=shape_id,
                ignored=0.3)
      for normalization in ("valid", "full", "batch_size", "none", None)
      for ignore_label in (None, 255, 0)
      for shape_id, (logits_shape, labels_shape) in SOFTMAX_TWIN_SHAPES.items()],
]


@pytest.mark.parametrize("layer, case", TWIN_CASES)
def test_gamma_zero_equals_caffes_own_loss(layer, case):
    """The same blobs, loss_weight 2 in both nets: the same loss and the same bottom diff."""
    logits_shape, labels_shape, settings = case["logits_shape"], case["labels_shape"], case["settings"]
    logits, labels = layer.inputs(np.random.default_rng(1), logits_shape,
                                  ignore_label=settings.get("ignore_label"), **case["inputs"])
    labels = labels.reshape(labels_shape)
    ours = run(layer_net(layer, logits_shape, labels_shape, settings, loss_weight=2),
               logits, labels)
    twin = caffe_loss("loss", layer.twin, loss_weight=2, loss_param=case["loss_param"])
    caffes = run(load_net(input_net(logits_shape, labels_shape, twin)), logits, labels)
    np.testing.assert_allclose(ours[0], caffes[0], rtol=2e-6)
    atol = case["atol"] if case["atol"] is not None else 1e-7 * np.abs(caffes[1]).max()
    np.testing.assert_allclose(ours[1], caffes[1], rtol=case["rtol"], atol=atol)
    assert np.abs(caffes[1]).max() > 0.01


GRADIENT_CASES = [
    (SIGMOID, {"focusing_parameter": 2, "alpha": 0.25}, None, (2, 3, 4)),
    (SIGMOID, {"focusing_parameter": 0.5, "ignore_label": -1, "normalization": "valid"}, "targets",
     (3, 4)),
    (SIGMOID, {"focusing_parameter": 1.5, "class_balances": [2, 0.5, 1], "label_smoothing": 0.1,
               "normalization": "positives"}, None, (2, 3, 2, 2)),
    (SOFTMAX, {"focusing_parameter": 2, "alpha": 0.25}, None, (2, 3, 4)),
    (SOFTMAX, {"focusing_parameter": 0.5, "ignore_label": -1, "normalization": "full"}, None, (3, 4)),
    (SOFTMAX, {"focusing_parameter": 1.5, "class_balances": {"0": 0.2, "2": 3}, "ignore_label": 255,
               "normalization": "batch_size"}, None, (2, 3, 2, 2)),
]


@pytest.mark.parametrize("layer, settings, form, shape", GRADIENT_CASES, ids=layer_id)
def test_float32_gradient_check_through_caffe_net_with_loss_weight(layer, settings, form, shape):
    """Caffe-style check: finite differences of the net's own forward (float32, step 1e-2), and
    the gradient against the naive loop."""
    loss_weight = 2.5
    logits, labels = layer.inputs(np.random.default_rng(0), shape, form,
                                  ignore_label=settings.get("ignore_label"), scale=2.0)
    net = layer_net(layer, shape, labels.shape, settings, loss_weight=loss_weight)
    _, analytic = run(net, logits, labels)

    def weighted_loss(x):
        net.blobs["score"].data[...] = x
        return loss_weight * net.forward()["loss"].item()
    numeric = numeric_gradient(weighted_loss, logits.copy(), 1e-2)
    assert_gradient_close(analytic, numeric, logits, threshold=1e-3)
    _, exact = layer.naive(logits.astype(np.float32), labels, settings)
    np.testing.assert_allclose(analytic, loss_weight * exact, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("layer, settings", [
    (SIGMOID, {"focusing_parameter": 2, "alpha": 0.25, "ignore_label": 255,
               "normalization": "positives", "class_balances": {"1": 2.0}}),
    (SOFTMAX, {"focusing_parameter": 2, "alpha": 0.25, "ignore_label": 255,
               "class_balances": [1.0, 2.0, 0.5]}),
], ids=layer_id)
def test_loss_and_gradient_match_the_naive_loop_in_float32(layer, settings):
    logits, labels = layer.inputs(np.random.default_rng(2), (4, 3, 5), ignore_label=255)
    loss, grad = run(layer_net(layer, (4, 3, 5), (4, 5), settings), logits, labels)
    naive_loss, exact = layer.naive(logits.astype(np.float32), labels, settings)
    np.testing.assert_allclose(loss, naive_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, exact, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("layer, form", LABEL_FORMS)
def test_loss_weight_reaches_the_gradient(layer, form):
    logits, labels = layer.inputs(np.random.default_rng(3), (3, 4), form)
    _, unit = run(layer_net(layer, (3, 4), labels.shape), logits, labels)
    _, weighted = run(layer_net(layer, (3, 4), labels.shape, loss_weight=2.5), logits, labels)
    np.testing.assert_allclose(weighted, 2.5 * unit, rtol=1e-6)


@pytest.mark.parametrize("layer, form", LABEL_FORMS)
def test_force_backward_zeroes_label_diff_and_leaves_bottoms_unchanged(layer, form):
    """Under force_backward Caffe asks the layer for a label gradient: it writes zeros there (7
    before) and leaves both bottoms' data as given."""
    logits, labels = layer.inputs(np.random.default_rng(4), (3, 4), form)
    net = layer_net(layer, (3, 4), labels.shape, force_backward=True)
    net.blobs["label"].diff[...] = 7.0
    run(net, logits, labels)
    assert np.all(net.blobs["label"].diff == 0)
    np.testing.assert_array_equal(net.blobs["score"].data, logits.astype(np.float32))
    np.testing.assert_array_equal(net.blobs["label"].data, labels.astype(np.float32))


@pytest.mark.parametrize("layer", LAYERS, ids=layer_id)
def test_ignored_positions_get_zero_diff(layer):
    logits, labels = layer.inputs(np.random.default_rng(5), (2, 3, 6), ignore_label=-1)
    _, grad = run(layer_net(layer, (2, 3, 6), (2, 1, 6), {"ignore_label": -1}), logits,
                  labels.reshape(2, 1, 6))
    ignored = np.broadcast_to((labels == -1)[:, None, :], grad.shape)
    assert ignored.any() and np.all(grad[ignored] == 0) and np.all(grad[~ignored] != 0)


@pytest.mark.parametrize("shapes", [[(4, 3), (7, 3), (2, 3)], [(2, 3, 4), (5, 3, 1), (1, 3, 9)]],
                         ids=["batch", "batch-and-spatial"])
@pytest.mark.parametrize("layer, settings", [(SIGMOID, {"normalization": "batch_size"}),
                                             (SOFTMAX, {"ignore_label": -1})], ids=layer_id)
def test_reshape_copes_with_batch_and_spatial_size_changing_between_calls(layer, settings, shapes):
    net = layer_net(layer, shapes[0], layer.labels_shape(shapes[0]), settings)
    rng = np.random.default_rng(6)
    for shape in shapes:
        logits, labels = layer.inputs(rng, shape, ignore_label=settings.get("ignore_label"))
        net.blobs["score"].reshape(*shape)
        net.blobs["label"].reshape(*labels.shape)
        net.reshape()
        loss, grad = run(net, logits, labels)
        expected, exact = layer.naive(logits.astype(np.float32), labels, settings)
        assert grad.shape == shape
        np.testing.assert_allclose(loss, expected, rtol=1e-5)
        np.testing.assert_allclose(grad, exact, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("layer", LAYERS, ids=layer_id)
def test_second_backward_after_one_forward_gives_the_same_gradient(layer):
    """A repeated backward (after an upstream in-place layer rewrote the diff) writes the same
    values, scaled by the top diff once."""
    settings = {"alpha": 0.25}
    logits, labels = layer.inputs(np.random.default_rng(7), (3, 4, 5))
    net = layer_net(layer, (3, 4, 5), (3, 5), settings, loss_weight=2.5)
    _, first = run(net, logits, labels)
    net.blobs["score"].diff[...] = -1.0   # as an upstream in-place layer might leave it
    net.backward()
    np.testing.assert_array_equal(net.blobs["score"].diff, first)
    _, exact = layer.naive(logits.astype(np.float32), labels, settings)
    np.testing.assert_allclose(first, 2.5 * exact, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("layer", LAYERS, ids=layer_id)
def test_phase_test_net_forward_gives_the_loss(layer):
    logits, labels = layer.inputs(np.random.default_rng(8), (2, 3, 4))
    net = layer_net(layer, (2, 3, 4), (2, 4), phase=caffe.TEST)
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    expected, _ = layer.naive(logits.astype(np.float32), labels, {})
    np.testing.assert_allclose(net.forward()["loss"].item(), expected, rtol=1e-5)


@pytest.mark.parametrize("layer, settings, message", [
    (SIGMOID, {"gamma": 2}, "unknown param_str key 'gamma'"),
    (SIGMOID, {"alpha": 3}, "alpha = 3 is not allowed"),
    (SIGMOID, {"class_balances": [1, 2]}, "class_balances has 2 weights but the logits have C=3 classes"),
    (SIGMOID, {"class_balances": {"9": 1}}, "class_balances names class id 9, but class ids run 1..3"),
    (SOFTMAX, {"gamma": 2}, "unknown param_str key 'gamma' (did you mean 'focusing_parameter'?)"),
    (SOFTMAX, {"num_anchors": 9}, "param_str key 'num_anchors' is sigmoid-only"),
    (SOFTMAX, {"label_smoothing": 0.1}, "param_str key 'label_smoothing' is sigmoid-only"),
    (SOFTMAX, {"normalization": "positives"}, "normalization = 'positives' is not allowed for "
                                              "SoftmaxFocalLossLayer: 'positives' is sigmoid-only"),
    (SOFTMAX, {"alpha": 3}, "alpha = 3 is not allowed"),
    (SOFTMAX, {"class_balances": [1, 2]}, "class_balances has 2 weights but the logits have C=3 classes"),
    (SOFTMAX, {"class_balances": {"3": 1}}, "class_balances names class id 3, but class ids run 0..2"),
], ids=layer_id)
def test_bad_param_str_fails_at_net_setup(layer, settings, message):
    with pytest.raises(Exception) as raised:
        layer_net(layer, (2, 3), (2,), settings)
    assert message in str(raised.value)


@pytest.mark.parametrize("layer", LAYERS, ids=layer_id)
def test_code_in_param_str_does_not_run_under_caffe(layer, tmp_path):
    marker = tmp_path / "created"
    text = focal_layer(f"__import__('os').system('touch {marker}')", layer=layer.name)
    with pytest.raises(Exception, match="not a JSON object or Python dict literal"):
        load_net(input_net((2, 3), (2,), text))
    assert not marker.exists()


@pytest.mark.parametrize("layer, labels_shape, message", [
    (SIGMOID, (2, 2), "bottom[1] (labels) has shape (2, 2), which fits neither"),
    (SOFTMAX, (2, 3), "bottom[1] (labels) has shape (2, 3), which does not fit logits of shape (2, 3)"),
], ids=layer_id)
def test_a_label_shape_the_layer_does_not_take_fails_at_setup(layer, labels_shape, message):
    with pytest.raises(Exception) as raised:
        layer_net(layer, (2, 3), labels_shape)
    assert message in str(raised.value)


@pytest.mark.parametrize("layer, labels, settings, message", [
    (SIGMOID, [[0, 1, 2], [0, 0, 0]], {}, r"the first is 2.0 at index \(0, 2\): per-class targets must lie in \[0, 1\]"),
    (SIGMOID, [[0, 1, -1], [0, 0, 0]], {"ignore_label": 255}, r"the first is -1.0 .* or ignore_label=255"),
    (SIGMOID, [1, 4], {}, r"the first is 4.0 at index \(1,\): class-index labels must be integers 0..3"),
    (SOFTMAX, [1, 3], {}, r"the first is 3.0 at index \(1,\): class labels must be integers 0..2"),
    (SOFTMAX, [-1, 0], {"ignore_label": 255}, r"the first is -1.0 .* or ignore_label=255"),
], ids=layer_id)
def test_bad_labels_fail_at_forward(layer, labels, settings, message):
    net = layer_net(layer, (2, 3), np.shape(labels), settings)
    net.blobs["label"].data[...] = labels
    with pytest.raises(Exception, match=message):
        net.forward()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("layer", LAYERS, ids=layer_id)
def test_non_finite_logits_fail_with_count_and_first_index_even_where_ignored(layer, bad):
    """The net diverged: said with the count and the first index in index order, whatever the
    labels (the second position is ignored)."""
    net = layer_net(layer, (2, 3), (2,), {"ignore_label": -1})
    net.blobs["label"].data[...] = [0, -1]
    net.blobs["score"].data[...] = 0
    net.blobs["score"].data[1, 2] = bad
    net.blobs["score"].data[0, 1] = bad
    with pytest.raises(Exception, match=rf"holds 2 non-finite value\(s\) \(NaN or ±inf\); the "
                                        rf"first is {bad} at index \(0, 1\)"):
        net.forward()


# ----------------------------------------------------------------------------------------------
# SoftmaxFocalLossLayer's own

def test_three_bottoms_are_refused_by_the_softmax_layer_at_setup():
    """(FocalLossLayer takes a third bottom, the normalizer: test_normalizer_bottom.py.)"""
    text = focal_layer({}, bottoms=("score", "label", "label"), layer=SOFTMAX.name)
    with pytest.raises(Exception, match=r"SoftmaxFocalLossLayer takes 2 bottoms \(logits, labels\) "
                                        r"and 1 top \(loss\); got 3 bottom\(s\)"):
        load_net(input_net((2, 3), (2,), text))


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


def test_softmax_layer_reshape_reads_only_blob_shapes():
    net = layer_net(SOFTMAX, (2, 3, 4), (2, 4))
    layer = net.layers[list(net._layer_names).index("loss")]
    top = ShapeOnlyBlob((7,))
    for logits_shape, labels_shape in (((5, 3, 6), (5, 1, 6)), ((5, 3, 6), (5, 6))):
        layer.reshape([ShapeOnlyBlob(logits_shape), ShapeOnlyBlob(labels_shape)], [top])
        assert top.shape == [1] and layer.kernel.shapes == (logits_shape, labels_shape)
