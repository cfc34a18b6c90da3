"""The optional third bottom: one value that divides the loss as max(value, 1) (Detectron's
fg_num), shared by several layers (one per FPN level), fed by Caffe's own Reduction layer."""
import numpy as np
import pytest
from caffe_nets import focal_layer, input_net, load_net

from focal_loss_layer.check.nets import input_layer

LOGITS, LABELS = (2, 3, 4), (2, 4)


def layer(settings, bottoms=("score", "label", "fg_num"), name="loss"):
    return focal_layer(settings, bottoms, name=name)


def count_input(shape=(1,)):
    return input_layer("fg_num", shape)


def case(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(scale=2.0, size=LOGITS).astype(np.float32),
            rng.integers(0, 4, size=LABELS).astype(np.float32))


def run(net, logits, labels, **blobs):
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    for name, value in blobs.items():
        net.blobs[name].data[...] = value
    out = {k: v.copy() for k, v in net.forward().items()}
    net.backward()
    return out, net.blobs["score"].diff.copy()


SETTINGS = {"focusing_parameter": 2, "alpha": 0.25}


@pytest.fixture(scope="module")
def reference():
    """Loss and gradient with normalization 'none' (the plain sum)."""
    net = load_net(input_net(LOGITS, LABELS, layer(dict(SETTINGS, normalization="none"),
                                                   bottoms=("score", "label"))))
    logits, labels = case()
    out, grad = run(net, logits, labels)
    return out["loss"].item(), grad


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0, 3.0, 7.25, 1e6])
def test_loss_and_gradient_are_the_sum_divided_by_max_of_value_and_one(reference, value):
    net = load_net(input_net(LOGITS, LABELS, count_input() + layer(SETTINGS)))
    logits, labels = case()
    out, grad = run(net, logits, labels, fg_num=value)
    divisor = max(value, 1.0)
    summed, summed_grad = reference
    np.testing.assert_allclose(out["loss"].item(), summed / divisor, rtol=1e-6)
    np.testing.assert_allclose(grad, summed_grad / divisor, rtol=1e-6, atol=1e-12)


SENTINEL = 5.0   # in a diff before backward: "writes zeros" and "writes nothing" then differ


def forward_seed_backward(net, logits, labels, seeded, **blobs):
    """run(), with SENTINEL put into the diffs of the blobs named in `seeded` between forward
    and backward (forward may write no diff; backward must overwrite what it is asked for)."""
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    for name, value in blobs.items():
        net.blobs[name].data[...] = value
    out = {k: v.copy() for k, v in net.forward().items()}
    for name in seeded:
        net.blobs[name].diff[...] = SENTINEL
    net.backward()
    return out, net.blobs["score"].diff.copy()


def test_under_force_backward_the_normalizer_and_label_diffs_are_written_as_zeros():
    net = load_net(input_net(LOGITS, LABELS, count_input() + layer(SETTINGS), force_backward=True))
    logits, labels = case()
    _, grad = forward_seed_backward(net, logits, labels, ("fg_num", "label"), fg_num=3.0)
    assert net.blobs["fg_num"].diff.item() == 0
    assert np.all(net.blobs["label"].diff == 0)
    assert np.abs(grad).max() > 1e-3                      # backward did run


def test_a_reduction_sum_over_per_image_counts_feeds_several_layers():
    """Two 'levels' share one count: the sum of per-image positives, made by Caffe's Reduction.
    Under force_backward Caffe asks for a gradient to the count: it gets zeros, summed by the
    Split layer Caffe puts in front of the two layers and passed on by the Reduction."""
    per_image = input_layer("pos", (2,))
    reduction = ('layer { name: "fg_num" type: "Reduction" bottom: "pos" top: "fg_num"\n'
                 '  reduction_param { operation: SUM axis: 0 } }\n')
    text = (input_net(LOGITS, LABELS, per_image + reduction + layer(SETTINGS, name="level3")
                      + layer(SETTINGS, name="level4"), force_backward=True))
    net = load_net(text)
    assert tuple(net.blobs["fg_num"].shape) == ()
    logits, labels = case(1)
    # Each layer's own label and normalizer bottoms (the Split's tops) and everything below.
    fed = [name for level in ("level3", "level4") for name in list(net.bottom_names[level])[1:]]
    assert len(fed) == 4 and "fg_num" not in fed
    seeded = fed + ["fg_num", "pos", "label"]
    out, grad = forward_seed_backward(net, logits, labels, seeded, pos=[3.0, 4.0])
    for name in seeded:
        assert np.all(net.blobs[name].diff == 0), name
    assert net.blobs["fg_num"].data.item() == 7.0
    plain = load_net(input_net(LOGITS, LABELS, layer(dict(SETTINGS, normalization="none"),
                                                     bottoms=("score", "label"))))
    summed, summed_grad = run(plain, logits, labels)
    for name in ("level3", "level4"):
        np.testing.assert_allclose(out[name].item(), summed["loss"].item() / 7.0, rtol=1e-6)
    np.testing.assert_allclose(grad, 2 * summed_grad / 7.0, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("value, shown", [(-1.0, "-1.0"), (np.nan, "nan"), (np.inf, "inf")])
def test_a_negative_or_non_finite_normalizer_is_an_input_error(value, shown):
    net = load_net(input_net(LOGITS, LABELS, count_input() + layer(SETTINGS)))
    logits, labels = case()
    net.blobs["fg_num"].data[...] = value
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    with pytest.raises(Exception, match=rf"bottom\[2\] \(normalizer\) is {shown}; it must be a "
                                        "finite number >= 0"):
        net.forward()


def test_a_normalizer_of_more_than_one_value_is_refused():
    with pytest.raises(Exception, match=r"bottom\[2\] \(normalizer\) has shape \(2,\); it must "
                                        "hold exactly one value"):
        load_net(input_net(LOGITS, LABELS, count_input((2,)) + layer(SETTINGS)))


def test_normalization_and_a_normalizer_bottom_together_are_a_param_error():
    with pytest.raises(Exception, match="normalization = 'positives' is not allowed with a third "
                                        "bottom"):
        load_net(input_net(LOGITS, LABELS, count_input()
                           + layer(dict(SETTINGS, normalization="positives"))))


def test_four_bottoms_are_refused():
    with pytest.raises(Exception, match=r"takes 2 or 3 bottoms \(logits, labels\[, normalizer\]\)"):
        load_net(input_net(LOGITS, LABELS, count_input() + layer(
            SETTINGS, bottoms=("score", "label", "fg_num", "fg_num"))))
