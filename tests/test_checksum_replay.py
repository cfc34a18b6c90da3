"""benchmarks.checksum_misses replays kernels.checksum_pairs in numpy: the replay must be the
kernel's checksum, bit for bit, for the miss rates it prints to be the kernel's."""
import numpy as np
import pytest

from benchmarks.checksum_misses import CHANGES, change, checksum, softmax_checksum
from focal_loss_layer.kernels import checksum_pairs


@pytest.mark.parametrize("n", [1, 2, 7, 64, 513])
def test_the_numpy_replay_is_the_kernels_checksum(n):
    rng = np.random.default_rng(n)
    x = rng.normal(scale=3, size=(4, n)).astype(np.float32)
    x[1] = np.round(x[1])
    labels = (rng.random((4, n)) < 0.3).astype(np.float32)
    for row in range(4):
        assert checksum(x[row:row + 1], labels[row:row + 1])[0] == checksum_pairs(
            x[row], 0, labels[row], 0, n)


def test_the_kernels_checksum_sees_the_changes_the_replay_counts():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 512)).astype(np.float32)
    labels = (rng.random((1, 512)) < 0.3).astype(np.float32)
    before = checksum_pairs(x[0], 0, labels[0], 0, 512)
    for kind in CHANGES:
        assert checksum_pairs(change(x, kind)[0], 0, labels[0], 0, 512) != before, kind



@pytest.mark.parametrize("classes,positions", [(2, 2), (3, 5), (2, 32), (3, 37), (4, 289),
                                               (2, 512)])
def test_the_softmax_replay_is_the_kernels_checksum(classes, positions):
    """One sample in one block: the kernel's checksum is the replay's."""
    from focal_loss_layer.params import parse_softmax_param_str
    from focal_loss_layer.softmax_fast import SoftmaxFocalLossKernel
    rng = np.random.default_rng(positions)
    x = rng.normal(scale=3, size=(1, classes, positions)).astype(np.float32)
    labels = rng.integers(0, classes, (1, positions)).astype(np.float32)
    kernel = SoftmaxFocalLossKernel(parse_softmax_param_str(""), x.shape, labels.shape)
    kernel.forward(x, labels)
    assert kernel._forward_checksum == softmax_checksum(x, labels)[0]


def test_the_softmax_checksum_sees_the_changes_the_replay_counts():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 4, 128)).astype(np.float32)
    labels = rng.integers(0, 4, (1, 128)).astype(np.float32)
    before = softmax_checksum(x, labels)
    for kind in CHANGES:
        assert softmax_checksum(change(x, kind), labels) != before, kind
