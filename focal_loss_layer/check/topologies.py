"""The diff contract in Caffe's topologies, against Caffe's own loss at γ = 0.

Caffe's Split layer sums the diffs of all consumers of a blob, whether or not each consumer's
backward ran; a loss whose backward Caffe skips (loss_weight 0, `propagate_down: false`) must
therefore leave its bottom diffs alone, and a TEST net's forward must write no diff at all. Each
role is built twice, once with the layer at γ = 0 and once with its twin, Caffe's C++
SigmoidCrossEntropyLoss or SoftmaxWithLoss (the same loss there, with the same default
normalization), over an InnerProduct with the same weights; what reaches the InnerProduct's
weights (and the loss tops) must agree."""
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .cases import LayerUnderTest
from .nets import caffe_loss, inner_product, input_layer, load_net, python_loss
from .report import FAIL, Row, measured

N, D, C = 4, 6, 3          # x (N, D) -> InnerProduct -> score (N, C)
LIMIT = 1e-5
SENTINEL = 1000.0


@dataclass(frozen=True)
class Role:
    """title; the loss under test's name, loss_weight and propagate_down; whether a main loss
    (the twin, loss_weight 1) shares its logits; the net's phase."""

    title: str
    loss_weight: float = 1.0
    propagate_down: Optional[Tuple[bool, bool]] = None
    with_main_loss: bool = False
    test_phase: bool = False


ROLES = (
    Role("main loss"),
    Role("monitor loss (loss_weight 0)", loss_weight=0.0, with_main_loss=True),
    Role("propagate_down: false", propagate_down=(False, False), with_main_loss=True),
    Role("TEST net", test_phase=True),
)


def net_text(layer: LayerUnderTest, role: Role, module: Optional[str]) -> str:
    """The role's net with the layer (module given) or with its twin (module None)."""
    label_shape = (N, C) if layer.twin_form == "targets" else (N,)
    text = (input_layer("x", (N, D)) + input_layer("label", label_shape)
            + inner_product("fc", "x", "score", C))
    if role.with_main_loss:
        text += caffe_loss("main", layer.twin)
    if module is None:
        return text + caffe_loss("under_test", layer.twin, loss_weight=role.loss_weight,
                                 propagate_down=role.propagate_down)
    return text + python_loss("under_test", module, layer.name, {"focusing_parameter": 0},
                              loss_weight=role.loss_weight, propagate_down=role.propagate_down)


def run(layer: LayerUnderTest, role: Role, module: Optional[str]):
    """(outputs, the InnerProduct's weight and bias diffs, the diffs of 'score' and 'label')
    after forward (and backward, in TRAIN) from fixed weights and inputs."""
    import caffe
    net = load_net(net_text(layer, role, module), caffe.TEST if role.test_phase else None)
    rng = np.random.default_rng(0)
    for blob in net.params["fc"]:
        blob.data[...] = rng.normal(scale=0.5, size=blob.data.shape)
        blob.diff[...] = 0
    net.blobs["x"].data[...] = rng.normal(size=(N, D))
    classes = rng.integers(0, C, N)
    net.blobs["label"].data[...] = (np.eye(C)[classes] if layer.twin_form == "targets" else classes)
    for name in ("score", "label"):
        net.blobs[name].diff[...] = SENTINEL
    outputs = {k: v.copy().ravel() for k, v in net.forward().items()}
    if not role.test_phase:
        net.backward()
    params = np.concatenate([blob.diff.ravel() for blob in net.params["fc"]])
    return outputs, params, {name: net.blobs[name].diff.copy() for name in ("score", "label")}


def gap(got, want) -> float:
    """max |got − want| / max |want|."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-12))


def row_name(layer: LayerUnderTest, role: Role) -> str:
    return f"{role.title} vs {layer.twin}"


def row(group: str, layer: LayerUnderTest, role: Role, module: str) -> Row:
    name = row_name(layer, role)
    ours, twin = run(layer, role, module), run(layer, role, None)
    errors = {"loss": max(gap(ours[0][k], twin[0][k]) for k in twin[0])}
    if role.test_phase:
        # Forward only: no diff may change.
        errors["diff change"] = max(gap(d, np.full_like(d, SENTINEL)) for d in ours[2].values())
    else:
        if not np.any(twin[1]):
            return Row(group, name, "-", FAIL, f"{layer.twin} gave the InnerProduct no gradient: "
                                               "this Caffe's own loss does not behave as expected")
        errors["weight grad"] = gap(ours[1], twin[1])
    return measured(group, name, errors, LIMIT, (
        f"the layer at γ 0 and {layer.twin} differ in the same net ({role.title}): the layer "
        "writes a bottom diff where Caffe's own loss does not (a diff may be written only in "
        "backward, only where propagate_down is true) or computes another loss. If --module "
        "names your own layer, fix that; otherwise report this output"))
