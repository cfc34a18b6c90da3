"""The one param_str table for both layers (README.md): keys and defaults read from the params
dataclasses, the allowed normalizations from the layer specs; what each key means and the
recommended values are written here, once. A key the layers have and this table lacks (or the
reverse) stops `make docs`."""
from dataclasses import MISSING, fields
from typing import Dict, Tuple

from focal_loss_layer.params import SIGMOID, SOFTMAX

# key: (type, allowed values, recommended for RetinaNet (sigmoid), for classification and
# segmentation). {normalizations} is filled in from the specs.
KEYS: Dict[str, Tuple[str, str, str, str]] = {
    "focusing_parameter": (
        "number", "γ ≥ 0, any real; 0 gives the cross-entropy of Caffe's own layer",
        "`2`", "`0` to reproduce `SigmoidCrossEntropyLoss` / `SoftmaxWithLoss`, then try `1`–`2`"),
    "alpha": (
        "number or null", "α ∈ [0, 1] on positives, 1 − α on negatives (softmax: on classes ≥ 1 "
        "and on class 0)", "`0.25`", "off"),
    "class_balances": (
        "list or dict", "C weights ≥ 0, or {{class id: weight}} (sigmoid ids 1..C, softmax 0..C−1)",
        "off", "from [`focal_loss_layer.balances`](docs/class_balances.md) for long-tailed classes"),
    "normalization": (
        "string", "{normalizations}; every divisor is at least 1",
        "`'positives'`, or a [normalizer bottom](#retinanet-recipe) for FPN levels",
        "the default"),
    "ignore_label": (
        "int or null", "the label value to skip (sigmoid per-class targets: a value outside [0, 1])",
        "`-1` (anchors with IoU in [0.4, 0.5))", "your data's (e.g. `255` for VOC borders)"),
    "label_smoothing": (
        "number", "ε ∈ [0, 1): targets become t·(1−ε) + ε/2 (sigmoid only)", "`0`", "`0`"),
    "num_anchors": (
        "int", "A ≥ 1: logits (N, A·C, …), labels (N, A, …) (sigmoid only)", "`9` (3 scales × 3 ratios)",
        "`1`"),
}


def params_table() -> str:
    sigmoid, softmax = _defaults(SIGMOID), _defaults(SOFTMAX)
    if set(KEYS) != set(sigmoid) | set(softmax):
        raise ValueError(f"params_table.KEYS {sorted(KEYS)} differ from the layers' keys "
                         f"{sorted(set(sigmoid) | set(softmax))}")
    lines = ["| key | type | default | allowed | RetinaNet | classification, segmentation |",
             "|---|---|---|---|---|---|"]
    for key, (kind, allowed, retinanet, classification) in KEYS.items():
        lines.append(f"| `{key}` | {kind} | {_default_cell(key, sigmoid, softmax)} | "
                     f"{allowed.format(normalizations=_normalizations())} | {retinanet} | {classification} |")
    return "\n".join(lines)


def _defaults(spec) -> Dict[str, object]:
    return {f.name: f.default for f in fields(spec.params_type)
            if f.name in spec.keys and f.default is not MISSING}


def _default_cell(key, sigmoid, softmax) -> str:
    if key not in softmax:
        return _shown(sigmoid[key])
    if sigmoid[key] == softmax[key]:
        return _shown(sigmoid[key])
    return f"sigmoid {_shown(sigmoid[key])}, softmax {_shown(softmax[key])}"


def _shown(value) -> str:
    if value is None:
        return "`null` (off)"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value!r}`"


def _normalizations() -> str:
    names = dict.fromkeys(SIGMOID.normalizations + SOFTMAX.normalizations)
    return ", ".join(f"`'{n}'`" + ("" if n in SOFTMAX.normalizations else " (sigmoid only)")
                     for n in names)
