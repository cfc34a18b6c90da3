"""Central-difference gradient checking (after Caffe's test_gradient_check_util.hpp): a relative
threshold scaled by max(|analytic|, |numeric|, 1), failures reported with index and values."""
import numpy as np

from focal_loss_layer.check.gradients import numeric_gradient  # the check's own, shared

__all__ = ["numeric_gradient", "assert_matches_central_differences", "assert_gradient_close"]


def assert_matches_central_differences(loss_and_grad, x, step=1e-5, threshold=1e-7):
    """loss_and_grad(x) -> (loss, grad): grad against central differences of loss at x."""
    _, analytic = loss_and_grad(x)
    numeric = numeric_gradient(lambda values: loss_and_grad(values)[0], x, step)
    assert_gradient_close(analytic, numeric, x, threshold)


def assert_gradient_close(analytic, numeric, inputs, threshold):
    """Fail listing the worst offenders: index, input, analytic and numeric values."""
    analytic = np.asarray(analytic, dtype=np.float64)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1.0)
    error = np.abs(analytic - numeric) / scale
    if np.all(error <= threshold):
        return
    worst = np.argsort(error, axis=None)[::-1][:5]
    lines = []
    for flat in worst:
        index = np.unravel_index(flat, analytic.shape)
        if error[index] <= threshold:
            break
        lines.append(f"  index {tuple(int(i) for i in index)}: input {inputs[index]!r}, analytic "
                     f"{analytic[index]!r}, numeric {numeric[index]!r}, rel. error {error[index]:.3g}")
    raise AssertionError(f"{np.count_nonzero(error > threshold)} gradient entries off by more "
                         f"than {threshold:g} (relative):\n" + "\n".join(lines))
