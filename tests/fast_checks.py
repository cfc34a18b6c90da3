"""Checks shared by the fast-path tests (test_fast.py, test_softmax_fast.py): a kernel's
forward + backward as a layer runs them, agreement with a float64 reference to float32 rounding,
and results that do not depend on the thread count."""
import numpy as np
import pytest

from focal_loss_layer.errors import InputError

# float32 rounding: the kernels' float32 arithmetic against the cores in float64.
LOSS_RTOL = 2e-6
GRAD_RTOL, GRAD_ATOL_OF_MAX = 1e-5, 1e-6


def forward_backward(kernel, logits, labels, loss_weight=1.0):
    """(loss, ∂(loss_weight·loss)/∂x) from a fast-path kernel, the gradient written into a fresh
    NaN-filled array (so that an entry the kernel skips shows)."""
    loss = kernel.forward(logits, labels)
    out = np.full(logits.shape, np.nan, np.float32)
    kernel.backward(loss_weight, out)
    return loss, out


def assert_float32_close(got, reference):
    """(loss, grad) against the reference's, to float32 rounding; returns both gradients."""
    (loss, grad), (ref_loss, ref_grad) = got, reference
    np.testing.assert_allclose(loss, ref_loss, rtol=LOSS_RTOL, atol=1e-30)
    atol = GRAD_ATOL_OF_MAX * max(np.abs(ref_grad).max(initial=0.0), 1e-30)
    np.testing.assert_allclose(grad, ref_grad, rtol=GRAD_RTOL, atol=atol)
    return grad, ref_grad


def assert_same_error(reference_check, run):
    """run() raises the InputError that reference_check() raises, word for word."""
    with pytest.raises(InputError) as expected:
        reference_check()
    with pytest.raises(InputError) as raised:
        run()
    assert str(raised.value) == str(expected.value)
    return str(raised.value)


def assert_threads_bit_identical(run):
    """run(threads) -> (loss, grad): the same bits with 1, the default, 2 and 3 threads."""
    one = run(1)
    for threads in (None, 2, 3):
        many = run(threads)
        assert one[0] == many[0]
        np.testing.assert_array_equal(one[1], many[1])
