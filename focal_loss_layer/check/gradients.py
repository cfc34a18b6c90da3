"""Central differences (after Caffe's test_gradient_check_util.hpp): the numpy core's gradient
against its own loss in float64, and the net's backward against the net's own forward loss
(pycaffe is float32, so a larger step and limit, Caffe's GradientChecker's 1e-2)."""
import numpy as np

from .agreement import LOSS_WEIGHT, net_text
from .cases import LayerUnderTest
from .nets import load_net
from .report import Row, measured

CORE_STEP, CORE_LIMIT = 1e-6, 1e-6
NET_STEP, NET_LIMIT = 1e-2, 1e-2
CORE_NAME = "central differences, numpy core (float64)"
NET_NAME = f"central differences, caffe.Net (float32, step {NET_STEP:g})"


def numeric_gradient(loss_of, x: np.ndarray, step: float) -> np.ndarray:
    """d loss_of(x) / dx by central differences, one element at a time (x is restored)."""
    grad = np.zeros(x.shape)
    for index in np.ndindex(*x.shape):
        original = x[index]
        x[index] = original + step
        plus = loss_of(x)
        x[index] = original - step
        minus = loss_of(x)
        x[index] = original
        grad[index] = (plus - minus) / (2 * step)
    return grad


def relative_gap(analytic, numeric) -> float:
    """max |analytic − numeric| / max |numeric|: the error in units of the largest gradient."""
    return float(np.max(np.abs(analytic - numeric)) / max(np.max(np.abs(numeric)), 1e-12))


def core_row(group: str, layer: LayerUnderTest) -> Row:
    """The numpy core in float64, on each of the layer's cases."""
    worst = 0.0
    for case in layer.cases:
        logits, labels = case.inputs(seed=1)
        logits = logits.astype(np.float64)
        _, analytic = layer.reference(case.settings, logits, labels)
        numeric = numeric_gradient(
            lambda x, c=case, y=labels: layer.reference(c.settings, x, y)[0], logits, CORE_STEP)
        worst = max(worst, relative_gap(analytic, numeric))
    return measured(group, CORE_NAME, {"grad": worst},
                    CORE_LIMIT, "the numpy core's gradient does not match its loss in this numpy: report "
                    "this output with your numpy version")


def net_row(group: str, layer: LayerUnderTest, module: str) -> Row:
    """The net's backward (over its loss_weight) against central differences of the net's
    forward loss, on the first case."""
    case = layer.cases[0]
    logits, labels = case.inputs(seed=2)
    net = load_net(net_text(layer, case, module))
    net.blobs["label"].data[...] = labels

    def loss_of(x):
        net.blobs["score"].data[...] = x
        return net.forward()["loss"].item()

    loss_of(logits)
    net.backward()
    analytic = net.blobs["score"].diff.astype(np.float64) / LOSS_WEIGHT
    numeric = numeric_gradient(loss_of, logits.copy(), NET_STEP)
    return measured(group, NET_NAME, {"grad": relative_gap(analytic, numeric)}, NET_LIMIT,
                    "the layer's backward in Caffe does not match its own forward loss: if "
                    "--module names your own layer, fix its backward")
