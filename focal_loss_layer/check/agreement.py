"""Forward and backward through caffe.Net against the numpy core: for each case, a net of two
Input blobs and the layer (loss_weight 2, so that the gradient must carry Caffe's top diff),
compared on the loss and on the logits' diff."""
import numpy as np

from .cases import Case, LayerUnderTest
from .nets import input_layer, load_net, python_loss
from .report import Row, measured

LIMIT = 1e-5          # float32 in Caffe against the float64 core
LOSS_WEIGHT = 2.0
ADVICE = ("Caffe ran the layer but its loss or gradient differs from focal_loss_layer's numpy core: "
          "if --module names your own layer, fix its forward/backward; otherwise reinstall "
          "focal_loss_layer (pip install --force-reinstall) and report this output")


def net_text(layer: LayerUnderTest, case: Case, module: str) -> str:
    return ("force_backward: true\n" + input_layer("score", case.shape)
            + input_layer("label", case.labels_shape)
            + python_loss("loss", module, layer.name, case.settings, loss_weight=LOSS_WEIGHT))


def relative_errors(layer: LayerUnderTest, case: Case, module: str):
    """(loss error relative to the core's loss, max |diff − core gradient| / max |core gradient|)."""
    logits, labels = case.inputs()
    net = load_net(net_text(layer, case, module))
    net.blobs["score"].data[...] = logits
    net.blobs["label"].data[...] = labels
    loss = net.forward()["loss"].item()
    net.backward()
    ref_loss, ref_grad = layer.reference(case.settings, logits, labels)
    ref_grad = LOSS_WEIGHT * ref_grad
    loss_error = abs(loss - ref_loss) / max(abs(ref_loss), 1e-12)
    grad_error = (np.max(np.abs(net.blobs["score"].diff - ref_grad))
                  / max(np.max(np.abs(ref_grad)), 1e-12))
    return loss_error, grad_error


def name(case: Case) -> str:
    return f"net vs core {case.title}"


def row(group: str, layer: LayerUnderTest, case: Case, module: str) -> Row:
    loss_error, grad_error = relative_errors(layer, case, module)
    return measured(group, name(case), {"loss": loss_error, "grad": grad_error},
                    LIMIT, ADVICE)
