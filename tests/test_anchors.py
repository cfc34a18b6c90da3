"""num_anchors: Detectron's RetinaNet layout, logits (N, A·C, *spatial) with channel a·C + c, read
as a reshape of the same memory. Checked against the same logits rearranged by a transpose into
the plain (N, C, *spatial) form, where the anchors become a spatial axis."""
import json

import numpy as np
import pytest
from caffe_nets import focal_layer, input_net, load_net

from focal_loss_layer.errors import InputError, ParamError
from focal_loss_layer.fast import FocalLossKernel
from focal_loss_layer.labels import anchor_view, label_form, read_labels
from focal_loss_layer.params import parse_param_str

N, A, C, H, W = 2, 3, 4, 3, 5


def anchor_case(seed, form, ignore_label=None, anchors=A, spatial=(H, W)):
    """logits (N, A·C, *spatial) and labels in `form` ('targets' or 'indices' (N, A, *spatial))."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(N, anchors * C) + spatial).astype(np.float32)
    if form == "targets":
        labels = (rng.random(logits.shape) < 0.2).astype(np.float32)
    else:
        labels = rng.integers(0, C + 1, size=(N, anchors) + spatial).astype(np.float32)
    if ignore_label is not None:
        labels[rng.random(labels.shape) < 0.15] = ignore_label
    return logits, labels


def to_plain_form(logits, labels, form, anchors=A):
    """The same problem as (N, C, A, *spatial): a transpose (a copy), anchors as a spatial axis."""
    spatial = logits.shape[2:]
    plain = logits.reshape((N, anchors, C) + spatial).swapaxes(1, 2).copy()
    if form == "targets":
        return plain, labels.reshape((N, anchors, C) + spatial).swapaxes(1, 2).copy()
    return plain, labels.copy()         # (N, A, *spatial) is already (N, *spatial') for it


def from_plain_form(grad, anchors=A):
    spatial = grad.shape[3:]
    return grad.swapaxes(1, 2).reshape((N, anchors * C) + spatial)


def fast(logits, labels, settings):
    params = parse_param_str(json.dumps(settings))
    kernel = FocalLossKernel(params, logits.shape, labels.shape)
    loss = kernel.forward(logits, labels)
    grad = np.empty(logits.shape, np.float32)
    kernel.backward(1.0, grad)
    return loss, grad


@pytest.mark.parametrize("normalization", ["batch_size", "full", "valid", "positives", "none"])
@pytest.mark.parametrize("form, ignore_label", [("targets", None), ("targets", -1),
                                                ("indices", None), ("indices", -1)])
@pytest.mark.parametrize("anchors, spatial", [(A, (H, W)), (A, ()), (1, (H, W)), (9, (2,))])
def test_anchor_layout_equals_the_transposed_plain_form(normalization, form, ignore_label,
                                                        anchors, spatial):
    settings = {"focusing_parameter": 2, "alpha": 0.25, "class_balances": [1.0, 2.0, 0.5, 1.5],
                "normalization": normalization}
    if ignore_label is not None:
        settings["ignore_label"] = ignore_label
    logits, labels = anchor_case(1, form, ignore_label, anchors, spatial)
    loss, grad = fast(logits, labels, dict(settings, num_anchors=anchors))
    plain_logits, plain_labels = to_plain_form(logits, labels, form, anchors)
    plain_loss, plain_grad = fast(plain_logits, plain_labels, settings)
    # batch_size divides by N images in both: the plain form's N is the same.
    np.testing.assert_allclose(loss, plain_loss, rtol=2e-6)
    np.testing.assert_allclose(grad, from_plain_form(plain_grad, anchors), rtol=1e-5, atol=1e-9)


def test_batch_size_normalization_divides_by_images_not_anchors():
    logits, labels = anchor_case(2, "indices")
    per_image, _ = fast(logits, labels, {"num_anchors": A})
    summed, _ = fast(logits, labels, {"num_anchors": A, "normalization": "none"})
    np.testing.assert_allclose(per_image * N, summed, rtol=1e-6)


def test_read_labels_gives_the_anchor_view():
    _, labels = anchor_case(3, "indices", ignore_label=-1)
    read = read_labels(labels, (N, A * C, H, W), ignore_label=-1, num_anchors=A)
    assert read.targets.shape == (N * A, C, H, W)
    assert anchor_view((N, A * C, H, W), (N, A, H, W), A) == ((N * A, C, H, W), (N * A, H, W))
    # Anchor a of image n is sample n·A + a; its class k positive is channel k−1.
    n, a, h, w = 1, 2, 0, 3
    k = int(labels[n, a, h, w])
    if k > 0:
        assert read.targets[n * A + a, k - 1, h, w] == 1


def test_the_kernel_reads_the_logits_in_place():
    """A view, never a copy: the kernel flattens C-contiguous float32 blobs without copying."""
    from focal_loss_layer.fast import _flat
    logits, _ = anchor_case(4, "indices")
    assert np.shares_memory(_flat(logits), logits)


@pytest.mark.parametrize("logits_shape, labels_shape, anchors, message", [
    ((N, 10, H, W), (N, A, H, W), 3, r"has 10 channels .* which num_anchors = 3 does not divide"),
    ((N, 12, H, W), (N, 4, H, W), 3, r"\(2, 4, 3, 5\), which fits neither label form .* "
                                     r"num_anchors = 3.*\(2, 3, 3, 5\) \(values 0..4"),
    ((N, 12, H, W), (N, H, W), 3, "fits neither label form"),
    ((N, 12, H, W), (N, 1, H, W), 3, "fits neither label form"),
])
def test_shape_errors_name_the_shapes_and_anchors(logits_shape, labels_shape, anchors, message):
    with pytest.raises(InputError, match=message):
        label_form(logits_shape, labels_shape, anchors)


@pytest.mark.parametrize("value", [0, -1, 2.5, "9", True, None])
def test_bad_num_anchors_is_a_param_error(value):
    with pytest.raises(ParamError, match=f"num_anchors = {value!r} is not allowed: num_anchors "
                                         "must be a whole number >= 1"):
        parse_param_str(json.dumps({"num_anchors": value}))


def test_a_retinanet_head_in_caffe_with_anchors_matches_the_plain_form():
    """Through caffe.Net: logits (N, A·C, H, W), labels (N, A, H, W), -1 ignored."""
    logits, labels = anchor_case(5, "indices", ignore_label=-1)
    settings = {"focusing_parameter": 2, "alpha": 0.25, "num_anchors": A, "ignore_label": -1}
    net = load_net(input_net(logits.shape, labels.shape, focal_layer(settings)))
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    loss = net.forward()["loss"].item()
    net.backward()
    plain_logits, plain_labels = to_plain_form(logits, labels, "indices")
    plain_settings = {k: v for k, v in settings.items() if k != "num_anchors"}
    plain_loss, plain_grad = fast(plain_logits, plain_labels, plain_settings)
    np.testing.assert_allclose(loss, plain_loss, rtol=2e-6)
    np.testing.assert_allclose(net.blobs["score"].diff, from_plain_form(plain_grad), rtol=1e-5,
                               atol=1e-9)
