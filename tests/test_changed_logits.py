"""Backward recomputes from the logits (fast.BlockedKernel.backward): logits or labels that
changed since forward must stop it with an InputError naming the cause, never give the gradient
of other logits. The issue's 3-layer net in real caffe.Net, for both layers: an in-place ReLU on
a Flatten view of the score, declared after the loss. The same net with the ReLU declared
before the loss, or not in place, trains like Caffe's C++ twin (SigmoidCrossEntropyLoss,
SoftmaxWithLoss at γ = 0) and does not trip the check."""
import json

import numpy as np
import pytest
from caffe_nets import load_net

from focal_loss_layer.errors import InputError
from focal_loss_layer.fast import FocalLossKernel
from focal_loss_layer.params import parse_param_str, parse_softmax_param_str
from focal_loss_layer.softmax_fast import SoftmaxFocalLossKernel

N, D, C = 4, 5, 3
LAYERS = {
    "FocalLossLayer": ("SigmoidCrossEntropyLoss", (N, C)),
    "SoftmaxFocalLossLayer": ("SoftmaxWithLoss", (N,)),
}
RELU_AFTER_LOSS_IN_PLACE = ('layer { name: "flat" type: "Flatten" bottom: "score" top: "flat" }\n'
                            'layer { name: "relu" type: "ReLU" bottom: "flat" top: "flat" }\n')
# Power scale −1 flips every sign: each flip adds 2^31 to a logit's bits, so a plain sum of bits
# modulo 2^32 is blind to an even number of them (here all N·C = 12 logits).
NEGATE_AFTER_LOSS_IN_PLACE = (
    'layer { name: "flat" type: "Flatten" bottom: "score" top: "flat" }\n'
    'layer { name: "negate" type: "Power" bottom: "flat" top: "flat" power_param { scale: -1 } }\n')
RELU_NOT_IN_PLACE = ('layer { name: "flat" type: "Flatten" bottom: "score" top: "flat" }\n'
                     'layer { name: "relu" type: "ReLU" bottom: "flat" top: "flat_relu" }\n')


def three_layer_net(loss_type, labels_shape, after_loss, layer=None):
    """data → InnerProduct → score → loss (ours, or Caffe's `loss_type` when layer is None),
    then `after_loss`."""
    def dims(shape):
        return " ".join(f"dim: {d}" for d in shape)
    if layer is None:
        loss = (f'layer {{ name: "loss" type: "{loss_type}" bottom: "score" bottom: "label" '
                'top: "loss" loss_weight: 1 }\n')
    else:
        param_str = json.dumps({"focusing_parameter": 0}).replace('"', '\\"')
        loss = (f'layer {{ name: "loss" type: "Python" bottom: "score" bottom: "label" '
                f'top: "loss" python_param {{ module: "focal_loss_layer" layer: "{layer}" '
                f'param_str: "{param_str}" }} loss_weight: 1 }}\n')
    return load_net(
        f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims((N, D))} }} }} }}\n'
        f'layer {{ name: "label" type: "Input" top: "label" input_param {{ shape {{ {dims(labels_shape)} }} }} }}\n'
        'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "score"\n'
        f'  inner_product_param {{ num_output: {C} weight_filler {{ type: "gaussian" std: 1 }} }} }}\n'
        + loss + after_loss)


def fill(net, labels_shape, seed=0):
    rng = np.random.default_rng(seed)
    net.params["ip"][0].data[...] = rng.normal(size=(C, D))
    net.params["ip"][1].data[...] = 0
    net.blobs["data"].data[...] = rng.normal(size=(N, D))
    if len(labels_shape) == 2:
        net.blobs["label"].data[...] = rng.random(labels_shape) < 0.4
    else:
        net.blobs["label"].data[...] = rng.integers(0, C, labels_shape)


def weight_gradient(net, labels_shape):
    fill(net, labels_shape)
    net.clear_param_diffs()
    net.forward()
    net.backward()
    return net.params["ip"][0].diff.copy()


@pytest.mark.parametrize("after_loss", [RELU_AFTER_LOSS_IN_PLACE, NEGATE_AFTER_LOSS_IN_PLACE],
                         ids=["relu", "negate"])
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_an_in_place_layer_on_a_view_of_the_logits_after_the_loss_stops_backward(layer, after_loss):
    twin, labels_shape = LAYERS[layer]
    net = three_layer_net(twin, labels_shape, after_loss, layer)
    fill(net, labels_shape)
    net.forward()
    computed = net.blobs["data"].data @ net.params["ip"][0].data.T   # what the loss saw
    assert np.any(np.abs(net.blobs["score"].data - computed) > 1e-3)   # rewritten since
    with pytest.raises(InputError) as raised:
        net.backward()
    message = str(raised.value)
    for text in ("bottom[0] (logits)", "changed between this loss layer's forward and its backward",
                 "in-place layer", "Flatten or Reshape view", "declared after this loss",
                 "declare that layer before the loss", "not in place"):
        assert text in message, text


@pytest.mark.parametrize("after_loss", [RELU_NOT_IN_PLACE, ""], ids=["relu not in place", "none"])
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_the_same_net_without_the_in_place_layer_trains_like_the_caffe_twin(layer, after_loss):
    twin, labels_shape = LAYERS[layer]
    ours = weight_gradient(three_layer_net(twin, labels_shape, after_loss, layer), labels_shape)
    reference = weight_gradient(three_layer_net(twin, labels_shape, after_loss), labels_shape)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)


KERNELS = {
    "sigmoid targets": lambda: (FocalLossKernel(parse_param_str(""), (2, 3, 4), (2, 3, 4)),
                                (2, 3, 4), (2, 3, 4), 2),
    # Rows longer than kernels.CHECKSUM_CHUNK, blocks of kernels.BLOCK: the changes below fall
    # in a row's first chunk, and in the last chunk of the last block.
    "sigmoid targets, long rows": lambda: (
        FocalLossKernel(parse_param_str(""), (1, 2, 9001), (1, 2, 9001)), (1, 2, 9001),
        (1, 2, 9001), 2),
    "sigmoid indices, long rows": lambda: (
        FocalLossKernel(parse_param_str(""), (1, 2, 9001), (1, 9001)), (1, 2, 9001), (1, 9001),
        3),
    "softmax NCS, several blocks": lambda: (
        SoftmaxFocalLossKernel(parse_softmax_param_str(""), (2, 3, 5000), (2, 5000)),
        (2, 3, 5000), (2, 5000), 3),
    "sigmoid indices, S == 1": lambda: (FocalLossKernel(parse_param_str(""), (6, 3), (6,)),
                                        (6, 3), (6,), 4),
    "softmax NCS": lambda: (SoftmaxFocalLossKernel(parse_softmax_param_str(""), (2, 3, 4), (2, 4)),
                            (2, 3, 4), (2, 4), 3),
    "softmax NC": lambda: (SoftmaxFocalLossKernel(parse_softmax_param_str(""), (6, 3), (6,)),
                           (6, 3), (6,), 3),
}


@pytest.mark.parametrize("change", ["one logit by one ulp", "a logit to NaN", "one label",
                                    "nothing"])
@pytest.mark.parametrize("kind", sorted(KERNELS))
def test_backward_sees_any_change_of_the_inputs_since_forward(kind, change):
    kernel, logits_shape, labels_shape, top_label = KERNELS[kind]()
    rng = np.random.default_rng(3)
    logits = rng.normal(size=logits_shape).astype(np.float32)
    labels = rng.integers(0, top_label, labels_shape).astype(np.float32)
    kernel.forward(logits, labels)
    if change == "one logit by one ulp":
        logits.reshape(-1)[5] = np.nextafter(logits.reshape(-1)[5], np.float32(np.inf))
    elif change == "a logit to NaN":
        logits.reshape(-1)[-1] = np.nan
    elif change == "one label":
        labels.reshape(-1)[1] = (labels.reshape(-1)[1] + 1) % top_label
    out = np.empty_like(logits)
    if change == "nothing":
        kernel.backward(logits, labels, 1.0, out)
        kernel.backward(logits, labels, 2.0, out)       # a second backward is as good
        return
    with pytest.raises(InputError, match="changed between this loss layer's forward and its"):
        kernel.backward(logits, labels, 1.0, out)
    kernel.backward(logits, labels, 1.0, out, check=False)   # what the benchmark times


def softmax_kernel(shape):
    """(a default SoftmaxFocalLossKernel for logits of shape, the logits' shape, the labels'
    shape, the number of classes)."""
    labels_shape = shape[:1] + shape[2:]
    return (SoftmaxFocalLossKernel(parse_softmax_param_str(""), shape, labels_shape), shape,
            labels_shape, shape[1])


STRUCTURED_KERNELS = {
    "sigmoid targets": lambda shape: FocalLossKernel(parse_param_str(""), shape, shape),
    "softmax": lambda shape: softmax_kernel(shape)[0],
}


@pytest.mark.parametrize("change", ["every logit negated", "every logit doubled",
                                    "every logit halved", "two logits swapped their signs"])
@pytest.mark.parametrize("kind", sorted(STRUCTURED_KERNELS))
def test_backward_sees_changes_whose_bit_differences_cancel_in_a_plain_sum(kind, change):
    # 512 logits: scaling each by 2^k adds k·2^23 to its bits, 512·k·2^23 ≡ 0 modulo 2^32; sign
    # flips add 2^31 each.
    shape = (2, 4, 64)
    kernel = STRUCTURED_KERNELS[kind](shape)
    rng = np.random.default_rng(5)
    logits = rng.normal(size=shape).astype(np.float32)
    labels = (rng.random(shape) < 0.3 if kind.startswith("sigmoid") else
              rng.integers(0, shape[1], shape[:1] + shape[2:])).astype(np.float32)
    kernel.forward(logits, labels)
    flat = logits.reshape(-1)
    if change == "every logit negated":
        flat *= -1
    elif change == "every logit doubled":
        flat *= 2
    elif change == "every logit halved":
        flat *= 0.5
    else:
        positive, negative = np.flatnonzero(flat > 0)[0], np.flatnonzero(flat < 0)[0]
        flat[[positive, negative]] *= -1
    with pytest.raises(InputError, match="changed between this loss layer's forward and its"):
        kernel.backward(logits, labels, 1.0, np.empty_like(logits))


# Every logit of a blob, changed one at a time: each pass's checksum covers every logit, in its
# vectorised steps and in their tails. Softmax: S = 37 = a step of 32 + 5; runs shorter than a
# step (S = 20); whole steps only (S = 64); without spatial dims (rows of C); a sample of
# 1000 positions over two blocks of 936 (C = 70). Sigmoid without spatial dims: 2 blocks;
# with: rows of 2051 = a chunk of 2048 + 3.
EVERY_LOGIT_KERNELS = {
    "softmax NCS": lambda: softmax_kernel((2, 3, 37)),
    "softmax NCS, short runs": lambda: softmax_kernel((3, 4, 20)),
    "softmax NCS, whole steps": lambda: softmax_kernel((2, 3, 64)),
    "softmax NC": lambda: softmax_kernel((50, 7)),
    "softmax NCS, a sample over two blocks": lambda: softmax_kernel((1, 70, 1000)),
    "sigmoid indices, S == 1": lambda: (FocalLossKernel(parse_param_str(""), (2100, 4), (2100,)),
                                        (2100, 4), (2100,), 5),
    "sigmoid targets, S == 1": lambda: (FocalLossKernel(parse_param_str(""), (2100, 4),
                                                        (2100, 4)), (2100, 4), (2100, 4), 2),
    "sigmoid targets, long rows": lambda: (FocalLossKernel(parse_param_str(""), (1, 2, 2051),
                                                           (1, 2, 2051)), (1, 2, 2051),
                                           (1, 2, 2051), 2),
}


def one_ulp_up(value):
    return np.nextafter(value, np.float32(np.inf))


def flip_each_bit(value):
    """value with each of its 32 bits flipped in turn: its sign, each exponent and mantissa bit."""
    bits = np.array([value], dtype=np.float32).view(np.uint32)[0]
    return (np.uint32(bits ^ (1 << k)).view(np.float32) for k in range(32))


@pytest.mark.parametrize("kind", sorted(EVERY_LOGIT_KERNELS))
def test_a_one_ulp_change_of_any_logit_or_label_stops_backward(kind):
    changes_stop_backward(kind, lambda value: [one_ulp_up(value)])


@pytest.mark.parametrize("kind", sorted(EVERY_LOGIT_KERNELS))
def test_a_flip_of_any_one_bit_of_any_logit_stops_backward(kind):
    # A sum of words shifted left (the softmax hash once took x_k·2^k of its quarters) drops
    # their top bits: a sign flip at 24 of every 64 positions went unseen.
    changes_stop_backward(kind, flip_each_bit)


def changes_stop_backward(kind, changed_values):
    """Backward raises after each logit (in turn) takes each of changed_values(its value), and
    after each label takes another class; restored, it runs."""
    kernel, logits_shape, labels_shape, top_label = EVERY_LOGIT_KERNELS[kind]()
    rng = np.random.default_rng(7)
    logits = rng.normal(size=logits_shape).astype(np.float32)
    labels = rng.integers(0, top_label, labels_shape).astype(np.float32)
    out = np.empty_like(logits)
    kernel.forward(logits, labels)
    flat, flat_labels = logits.reshape(-1), labels.reshape(-1)
    # Small blobs: every logit; the others: every logit near a chunk, block or row edge (and,
    # in the softmax blob of 70 classes × 1000 positions, near its blocks' and steps' edges).
    edges = np.unique(np.concatenate([np.arange(k - 2, k + 3) for k in
                                      (0, 2048, 2051, 4096, 4102, 8192, flat.size - 1)]
                                     + [c * 1000 + np.array([31, 32, 935, 936, 959, 960, 999])
                                        for c in (0, 1, 69)]))
    where = np.arange(flat.size) if flat.size <= 1000 else edges[(edges >= 0)
                                                                 & (edges < flat.size)]
    for i in where:
        kept = flat[i]
        for value in changed_values(kept):
            flat[i] = value
            with pytest.raises(InputError, match="changed between"):
                kernel.backward(logits, labels, 1.0, out)
        flat[i] = kept
    for i in np.unique(np.concatenate([[0, 1, flat_labels.size - 1], where % flat_labels.size])):
        kept = flat_labels[i]
        flat_labels[i] = (kept + 1) % top_label
        with pytest.raises(InputError, match="changed between"):
            kernel.backward(logits, labels, 1.0, out)
        flat_labels[i] = kept
    kernel.backward(logits, labels, 1.0, out)     # restored: no error


@pytest.mark.parametrize("change", ["two classes' logits swapped", "two steps of a map swapped",
                                    "a map flipped"])
def test_softmax_backward_sees_logits_that_changed_places(change):
    # The softmax hash sums one term per step of 32 positions; each term holds its step's
    # index, so a term that moves to another step's place changes the sum.
    shape = (2, 4, 128)
    kernel = STRUCTURED_KERNELS["softmax"](shape)
    rng = np.random.default_rng(6)
    logits = rng.normal(size=shape).astype(np.float32)
    labels = rng.integers(0, shape[1], (2, 128)).astype(np.float32)
    kernel.forward(logits, labels)
    if change == "two classes' logits swapped":
        logits[:, [1, 2]] = logits[:, [2, 1]]
    elif change == "two steps of a map swapped":
        logits[:, :, :32], logits[:, :, 32:64] = logits[:, :, 32:64].copy(), logits[:, :, :32].copy()
    else:
        logits[:] = logits[:, :, ::-1].copy()
    with pytest.raises(InputError, match="changed between"):
        kernel.backward(logits, labels, 1.0, np.empty_like(logits))
