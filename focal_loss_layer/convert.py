"""Rewrite a net's C++ MultiBoxLoss and fork focal-loss layers into this package's Python layers.

    python -m focal_loss_layer.convert train.prototxt -o train_converted.prototxt
    focal-loss-convert train.prototxt -o train_converted.prototxt

Each converted layer becomes `type: "Python"` with
`python_param { module: "focal_loss_layer" layer: ... param_str: '<a JSON object>' }`:

    type "MultiBoxLoss" (SSD)  ->  MultiBoxFocalLossLayer
        param_str: focusing_parameter 0 (the same loss as before), normalization from
        loss_param (normalization: X; the deprecated normalize: true/false -> VALID/BATCH_SIZE,
        as MultiBoxLoss reads it; absent -> VALID, LossParameter's default), then every field
        of multibox_loss_param under its own name, as written (enums as their names; a bool or
        enum given as a number as what it means).
    type "MultiBoxFocalLoss" (chuanqi305/FocalLoss's SSD layer)  ->  MultiBoxFocalLossLayer
        as above, with focusing_parameter = focal_loss_param's gamma. Its alpha multiplies
        every conf term (background too) and not the loc loss: a constant factor, so it becomes
        loss_weight x alpha and loc_weight / alpha. With conf_loss_type LOGISTIC the fork uses
        plain SigmoidCrossEntropyLoss: gamma and alpha were unused, focusing_parameter is 0.
    type "FocalLoss" (chuanqi305/FocalLoss, zimenglan-sysu-512/Focal-Loss: softmax focal loss)
        ->  SoftmaxFocalLossLayer: focusing_parameter = gamma (zimenglan's first version: gama),
        ignore_label and normalization from loss_param. Both forks multiply every position's
        term by alpha: it becomes loss_weight x alpha (zimenglan's first version never used it).

The layer keeps its name, bottoms, tops, include/exclude, propagate_down and every other field
and comment; multibox_loss_param, loss_param and focal_loss_param move into param_str, and
loss_weight is written (a Python layer is not a LossLayer: without it Caffe ignores the loss).
Every byte outside the converted layers stays as it was. Why each fork is read as it is:
docs/convert.md.
"""
import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .prototxt_text import (
    Entry,
    ListValue,
    Message,
    PrototxtSyntaxError,
    Scalar,
    line_column,
    parse,
    quote_string,
    top_level_layers,
)

MODULE = "focal_loss_layer"
MULTIBOX_LAYER = "MultiBoxFocalLossLayer"
SOFTMAX_LAYER = "SoftmaxFocalLossLayer"
MOVED = ("multibox_loss_param", "loss_param", "focal_loss_param")

# SSD's caffe.proto (MultiBoxLossParameter, LossParameter): the bool fields, and each enum's names
# by number, so that `share_location: 1` or `match_type: 0` is carried as what it means rather
# than as a number the layer would refuse. tests/test_convert.py checks these against caffe_pb2.
MULTIBOX_BOOLS = ("share_location", "use_prior_for_matching", "use_difficult_gt", "do_neg_mining",
                  "encode_variance_in_target", "map_object_to_agnostic",
                  "ignore_cross_boundary_bbox", "bp_inside", "use_prior_for_nms")
MULTIBOX_ENUMS = {
    "loc_loss_type": {0: "L2", 1: "SMOOTH_L1"},
    "conf_loss_type": {0: "SOFTMAX", 1: "LOGISTIC"},
    "match_type": {0: "BIPARTITE", 1: "PER_PREDICTION"},
    "code_type": {1: "CORNER", 2: "CENTER_SIZE", 3: "CORNER_SIZE"},
    "mining_type": {0: "NONE", 1: "MAX_NEGATIVE", 2: "HARD_EXAMPLE"},
}
NORMALIZATIONS = {0: "FULL", 1: "VALID", 2: "BATCH_SIZE", 3: "NONE"}
# The forks' FocalLossParameter fields (their caffe.proto additions).
CHUANQI_FIELDS = ("alpha", "gamma", "axis", "engine")
ZIMENGLAN_FIELDS = ("alpha", "gamma", "gama", "beta", "type")
HINT = ("To train with focal loss, set in a MultiBoxFocalLossLayer's param_str 'focusing_parameter': 2, "
        "'alpha': 0.25, 'conf_loss_type': 'LOGISTIC', 'mining_type': 'NONE', and give the *_mbox_conf "
        "convolutions the prior bias (bias_filler constant -4.595 for pi = 0.01): "
        "docs/ssd.md#turning-focal-loss-on.")
LOGISTIC_NONE_WARNING = (
    "conf_loss_type LOGISTIC with mining_type NONE: C++ MultiBoxLoss's EncodeConfPrediction "
    "advances its target pointer by num_priors per image instead of num_priors x num_classes, so "
    "every image after the first in a batch trained on scrambled targets; {layer} computes the "
    "right targets, so this net's loss changes after conversion (docs/convert.md).")


class ConversionError(ValueError):
    """A layer the converter recognises but cannot convert to the same loss; the message names
    its line and column."""


@dataclass
class Rewrite:
    """What one layer becomes: its param_str (in order) and loss_weight factor, and what to say."""
    name: str
    old_type: str
    line: int
    layer: str
    params: Dict[str, object]
    loss_weight_factor: float = 1.0
    shown: Dict[str, object] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    loss_weight: float = 1.0          # filled in when the text is written


@dataclass
class Conversion:
    text: str
    rewrites: List[Rewrite]


def convert_text(text: str) -> Conversion:
    """text with every convertible layer rewritten (other bytes unchanged), and what was done.
    PrototxtSyntaxError for text that is not prototxt, ConversionError for a layer that cannot
    be converted."""
    root = parse(text)
    edits, rewrites = [], []
    for entry in top_level_layers(root):
        layer = _Layer(text, entry)
        if layer.type not in CONVERTERS:
            continue
        if entry.name == "layers":
            layer.fail("an old-style `layers` block (V1LayerParameter) cannot hold a Python "
                       "layer (it has no python_param); upgrade the net first with Caffe's "
                       "upgrade_net_proto_text tool", entry.start)
        rewrite = CONVERTERS[layer.type](layer)
        edits.append((entry.value.start, entry.value.end, _rewritten_block(layer, rewrite)))
        rewrites.append(rewrite)
    return Conversion(_apply(text, edits), rewrites)


class _Layer:
    """One `layer { ... }` block: its fields read as the converters need them."""

    def __init__(self, text: str, entry: Entry):
        self.text, self.entry, self.message = text, entry, entry.value
        name = self.message.first("name")
        self.name = name.value.value() if name and _is(name.value, "string") else "(unnamed)"
        kind = self.last("type")
        self.type = kind.value.value() if kind and isinstance(kind.value, Scalar) else None
        self.line = line_column(text, entry.start)[0]

    def fail(self, message: str, offset: Optional[int] = None):
        line, column = line_column(self.text, self.entry.start if offset is None else offset)
        raise ConversionError(f"line {line}, column {column}: layer {self.name!r} "
                              f"(type {self.type}): {message}")

    def last(self, name: str, within: Optional[Message] = None) -> Optional[Entry]:
        found = (within or self.message).all(name)
        return found[-1] if found else None     # as protobuf's Merge: the last one counts

    def block(self, name: str) -> Optional[Message]:
        entry = self.last(name)
        if entry is not None and not isinstance(entry.value, Message):
            self.fail(f"{name} must be a {{ ... }} block", entry.start)
        return entry.value if entry else None

    def fields(self, name: str, bools=(), enums=None) -> Dict[str, object]:
        """The fields of block `name` as JSON values, in the order written."""
        block = self.block(name)
        return _json_fields(block, bools, enums or {}) if block else {}

    def flag(self, entry: Entry) -> bool:
        """A bool field's value (true, True, t, 1, false, False, f, 0)."""
        value = _json_value(entry.value, entry.name, (entry.name,), {}) \
            if isinstance(entry.value, Scalar) else None
        if not isinstance(value, bool):
            self.fail(f"{entry.name} must be true or false", entry.start)
        return value

    def number(self, where: str, key: str, value, default):
        if key not in value:
            return default
        number = value[key]
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            self.fail(f"{where} {key} = {number!r} is not a number")
        return number


def _is(value, kind: str) -> bool:
    return isinstance(value, Scalar) and value.kind == kind


def _json_fields(message: Message, bools, enums) -> Dict[str, object]:
    """{name: value} of a block; a name written more than once (or a [list]) gives a list."""
    grouped: Dict[str, list] = {}
    for entry in message.entries:
        values = entry.value.items if isinstance(entry.value, ListValue) else [entry.value]
        grouped.setdefault(entry.name, []).extend(
            _json_value(v, entry.name, bools, enums) for v in values)
        if isinstance(entry.value, ListValue):
            grouped[entry.name].append(_LIST)
    out = {}
    for name, values in grouped.items():
        is_list = _LIST in values
        values = [v for v in values if v is not _LIST]
        out[name] = values if is_list or len(values) > 1 else values[0]
    return out


_LIST = object()     # marks a field written as [a, b]: a list even with one item
_TRUE, _FALSE = ("true", "True", "t"), ("false", "False", "f")
_FLOAT_WORDS = {"inf": float("inf"), "infinity": float("inf"), "nan": float("nan")}


def _json_value(value, name: str, bools, enums):
    if isinstance(value, Message):
        return _json_fields(value, (), {})
    if value.kind == "string":
        return value.value()
    if value.kind == "number":
        number = value.value()
        if name in bools and number in (0, 1):
            return bool(number)
        if name in enums and isinstance(number, int) and number in enums[name]:
            return enums[name][number]
        return number
    word = value.text
    if word in _TRUE + _FALSE and (name in bools or word in ("true", "false", "True", "False")):
        return word in _TRUE
    bare = word.lstrip("-").lower()
    if name not in enums and bare in _FLOAT_WORDS:
        return -_FLOAT_WORDS[bare] if word.startswith("-") else _FLOAT_WORDS[bare]
    return word     # an enum name, carried as written


def _normalization(layer: _Layer, loss: Dict[str, object]) -> object:
    """LossParameter's mode as MultiBoxLoss and SoftmaxWithLoss read it: normalization if given,
    else the deprecated normalize (true -> VALID, false -> BATCH_SIZE), else VALID."""
    if "normalization" in loss:
        return loss["normalization"]     # a name as written (a number is named by _loss_fields)
    if "normalize" in loss:
        normalize = loss["normalize"]
        if normalize in (0, 1) and not isinstance(normalize, bool):
            normalize = bool(normalize)
        if not isinstance(normalize, bool):
            layer.fail(f"loss_param normalize = {normalize!r} is not true or false")
        return "VALID" if normalize else "BATCH_SIZE"
    return "VALID"


def _loss_fields(layer: _Layer) -> Dict[str, object]:
    return layer.fields("loss_param", bools=("normalize",),
                        enums={"normalization": NORMALIZATIONS})


def _multibox(layer: _Layer) -> Rewrite:
    """MultiBoxLoss, or chuanqi305's MultiBoxFocalLoss (focal_loss_param { alpha gamma })."""
    fields = layer.fields("multibox_loss_param", MULTIBOX_BOOLS, MULTIBOX_ENUMS)
    loss = _loss_fields(layer)
    params = {"focusing_parameter": 0, "normalization": _normalization(layer, loss)}
    params.update(fields)
    rewrite = Rewrite(layer.name, layer.type, layer.line, MULTIBOX_LAYER, params)
    dropped = [key for key in loss if key not in ("normalization", "normalize")]
    if dropped:
        rewrite.notes.append(f"loss_param {', '.join(dropped)}: not read by {layer.type}; dropped")
    conf = fields.get("conf_loss_type", "SOFTMAX")
    mining = fields.get("mining_type", "MAX_NEGATIVE")
    if layer.type == "MultiBoxFocalLoss":
        _chuanqi_multibox(layer, rewrite, conf)
    if conf == "LOGISTIC" and mining == "NONE":
        rewrite.warnings.append(LOGISTIC_NONE_WARNING.format(layer=MULTIBOX_LAYER))
    propagate = [layer.flag(e) for e in layer.message.all("propagate_down")]
    left_out = [term for term, down in zip(("loc", "conf"), propagate) if not down]
    if left_out:
        rewrite.warnings.append(
            f"propagate_down false for {' and '.join('mbox_' + t for t in left_out)}: C++ left "
            f"{'that term' if len(left_out) == 1 else 'those terms'} out of its loss value; "
            f"{MULTIBOX_LAYER}'s loss value holds both terms (the gradients are the same)")
    rewrite.shown = {"num_classes": fields.get("num_classes", "(not given)"),
                     "conf_loss_type": conf, "mining_type": mining,
                     "normalization": params["normalization"],
                     "focusing_parameter": params["focusing_parameter"]}
    if "loc_weight" in params and layer.type == "MultiBoxFocalLoss":
        rewrite.shown["loc_weight"] = params["loc_weight"]
    return rewrite


def _chuanqi_multibox(layer: _Layer, rewrite: Rewrite, conf) -> None:
    """chuanqi305/FocalLoss's MultiBoxFocalLoss: MultiBoxLoss whose SOFTMAX conf loss is its
    FocalLoss (-alpha (1 - p_t)^gamma log p_t on every matched or mined prior, background
    included, alpha a constant factor) and whose LOGISTIC conf loss is plain
    SigmoidCrossEntropyLoss (gamma and alpha unused)."""
    focal = layer.fields("focal_loss_param")
    unknown = [key for key in focal if key not in CHUANQI_FIELDS]
    if unknown:
        layer.fail(f"focal_loss_param field {unknown[0]!r} is not one of chuanqi305/FocalLoss's "
                   f"({', '.join(CHUANQI_FIELDS)}): a MultiBoxFocalLoss from another fork; not converted")
    gamma = layer.number("focal_loss_param", "gamma", focal, 2.0)
    alpha = layer.number("focal_loss_param", "alpha", focal, 0.25)
    if conf == "LOGISTIC":
        rewrite.notes += [
            "chose: focusing_parameter 0, no alpha",
            f"why: chuanqi305's MultiBoxFocalLoss hands LOGISTIC to plain SigmoidCrossEntropyLoss; "
            f"its gamma {_num(gamma)} and alpha {_num(alpha)} were never used"]
        return
    if alpha == 0:
        layer.fail("focal_loss_param alpha = 0 switches chuanqi305's conf loss off; "
                   "MultiBoxFocalLossLayer has no equivalent (set the conf loss by hand)")
    loc_weight = layer.number("multibox_loss_param", "loc_weight", rewrite.params, 1.0)
    rewrite.params["focusing_parameter"] = gamma
    rewrite.params["loc_weight"] = loc_weight / alpha
    rewrite.loss_weight_factor = alpha
    rewrite.notes += [
        f"chose: focusing_parameter {_num(gamma)}; alpha {_num(alpha)} as loss_weight x {_num(alpha)} "
        f"and loc_weight / {_num(alpha)}, no alpha key",
        "why: chuanqi305's MultiBoxFocalLoss multiplies every prior's conf term by alpha, background "
        "too, and not the loc loss (a constant factor); our alpha would weigh background by 1 - alpha. "
        "The weighted loss is the same; the top's value is 1/alpha times C++'s"]


# What each FocalLoss fork's alpha did, and in which of its commits (docs/convert.md).
_ALPHA_WHY = {
    "chuanqi305/FocalLoss":
        "chuanqi305/FocalLoss multiplies every position's loss and gradient by alpha (since its "
        "commit 1bd61f3; before it, backward gave the other classes 1 - alpha)",
    "zimenglan-sysu-512/Focal-Loss":
        "zimenglan-sysu-512/Focal-Loss multiplies every position's loss and gradient by alpha "
        "(since its commit b9e01e6; before it, alpha was unused)",
}
_ALPHA_WHY["chuanqi305/FocalLoss or zimenglan-sysu-512/Focal-Loss"] = (
    "both forks multiply every position's loss and gradient by alpha in their final code")


def _softmax_focal(layer: _Layer) -> Rewrite:
    """FocalLoss of chuanqi305/FocalLoss or zimenglan-sysu-512/Focal-Loss: both a softmax over
    axis 1 and -alpha (1 - p_t)^gamma log p_t per position (alpha a constant factor), with
    LossLayer's ignore_label and normalization."""
    focal = layer.fields("focal_loss_param", enums={"type": {0: "ORIGIN", 1: "LINEAR"}})
    unknown = [key for key in focal if key not in CHUANQI_FIELDS + ZIMENGLAN_FIELDS]
    if unknown:
        layer.fail(f"focal_loss_param field {unknown[0]!r} is neither chuanqi305/FocalLoss's "
                   f"({', '.join(CHUANQI_FIELDS)}) nor zimenglan-sysu-512/Focal-Loss's "
                   f"({', '.join(ZIMENGLAN_FIELDS)}): a FocalLoss from another fork; not converted")
    if "gama" in focal and "gamma" in focal:
        layer.fail("focal_loss_param has both gama and gamma; no fork has both")
    if len(layer.message.all("top")) > 1:
        layer.fail("its second top (the softmax probabilities) has no equivalent: "
                   f"{SOFTMAX_LAYER} has one top, the loss")
    # chuanqi305 reads the labels along focal_loss_param's axis, both forks softmax along
    # softmax_param's (their inner Softmax layer is built from the same LayerParameter).
    for where, axis in (("focal_loss_param axis", focal.get("axis", 1)),
                        ("softmax_param axis", layer.fields("softmax_param").get("axis", 1))):
        if axis != 1:
            layer.fail(f"{where} = {axis!r}: {SOFTMAX_LAYER}'s softmax runs over axis 1 "
                       "(reshape the logits to (N, C, ...) first); not converted")
    first_version = "gama" in focal
    if first_version or "beta" in focal or "type" in focal:
        fork = "zimenglan-sysu-512/Focal-Loss"
    elif "axis" in focal or "engine" in focal:
        fork = "chuanqi305/FocalLoss"
    else:
        fork = "chuanqi305/FocalLoss or zimenglan-sysu-512/Focal-Loss"
    gamma = layer.number("focal_loss_param", "gama" if first_version else "gamma", focal, 2.0)
    loss = _loss_fields(layer)
    params = {"focusing_parameter": gamma}
    normalization = _normalization(layer, loss)
    params["normalization"] = normalization.lower() if isinstance(normalization, str) else normalization
    if "ignore_label" in loss:
        params["ignore_label"] = loss["ignore_label"]
    rewrite = Rewrite(layer.name, layer.type, layer.line, SOFTMAX_LAYER, params)
    if first_version:
        rewrite.notes += [
            f"chose: focusing_parameter {_num(gamma)} (gama), no alpha (read as {fork}'s first version)",
            "why: that version never used alpha, beta or type; its loss was -log(max((1-p_t)^gama log p_t, "
            "FLT_MIN)), a constant 87.34 per position, and its gradient flipped the focusing term's sign, "
            "so the converted layer's loss and gradient differ from what the net trained with"]
    else:
        alpha = layer.number("focal_loss_param", "alpha", focal, 0.25)
        rewrite.loss_weight_factor = alpha
        rewrite.notes += [
            f"chose: focusing_parameter {_num(gamma)}; alpha {_num(alpha)} as loss_weight x {_num(alpha)}, "
            f"no alpha key (read as {fork})",
            f"why: {_ALPHA_WHY[fork]}, a constant factor; our alpha weighs class 0 by 1 - alpha"]
    if fork == "chuanqi305/FocalLoss or zimenglan-sysu-512/Focal-Loss":
        rewrite.notes.append(
            "caution: sigmoid FocalLoss forks (liuyuisanai/Focal-Loss, sciencefans/Focal-Loss) use the same "
            "alpha and gamma fields; for those use FocalLossLayer instead (their labels have the logits' "
            f"shape, which {SOFTMAX_LAYER} refuses at set-up, so a wrong guess cannot train)")
    if str(focal.get("type", "ORIGIN")) != "ORIGIN":
        rewrite.notes.append(f"type {focal['type']}: zimenglan-sysu-512's layer never implemented it; "
                             "it computed ORIGIN, its only formula, whatever type said")
    dropped = [key for key in ("beta", "engine") if key in focal and not first_version] + [
        key for key in loss if key not in ("normalization", "normalize", "ignore_label")]
    if dropped:
        rewrite.notes.append(f"dropped {', '.join(dropped)}: not used by the fork's loss")
    rewrite.shown = dict(params)
    return rewrite


CONVERTERS = {"MultiBoxLoss": _multibox, "MultiBoxFocalLoss": _multibox, "FocalLoss": _softmax_focal}


# ---- writing the converted block -------------------------------------------------------------

def _rewritten_block(layer: _Layer, rewrite: Rewrite) -> str:
    """The layer's { ... } with type "Python", the moved blocks replaced by python_param (and
    loss_weight), everything else (fields, comments, layout) as it was."""
    text, message = layer.text, layer.message
    if message.first("python_param") is not None:
        layer.fail("it already has a python_param block")
    type_entry = layer.last("type")
    edits = [(type_entry.value.start, type_entry.value.end, '"Python"')]
    weights = message.all("loss_weight")
    if len(weights) > 1:
        layer.fail("more than one loss_weight for its one top")
    original_weight = 1.0
    if weights:
        value = weights[0].value
        if not _is(value, "number"):
            layer.fail(f"loss_weight {getattr(value, 'text', '{...}')} is not a number", weights[0].start)
        original_weight = value.value()
    rewrite.loss_weight = original_weight * rewrite.loss_weight_factor
    if weights and rewrite.loss_weight_factor != 1:
        edits.append((weights[0].value.start, weights[0].value.end, _num(rewrite.loss_weight)))
    add_weight = None if weights else _num(rewrite.loss_weight)
    moved = [e for e in message.entries if e.name in MOVED]
    anchor = moved[0] if moved else type_entry
    lines = _own_lines(text, anchor)
    if lines is not None:
        start, end, indent, newline = lines
        unit = _indent_unit(text, message)
        block = _python_param_lines(rewrite, indent, unit, add_weight, newline)
        edits.append((start, end, block) if moved else (end, end, block))
    else:
        block = _python_param_inline(rewrite, add_weight)
        edits.append((anchor.start, anchor.end, block) if moved else (anchor.end, anchor.end, " " + block))
    for entry in moved[1:]:
        edits.append(_removal(text, entry))
    shifted = [(s - message.start, e - message.start, r) for s, e, r in edits]
    return _apply(text[message.start:message.end], shifted)


def _own_lines(text: str, entry: Entry):
    """(start, end, indent, newline) of the whole lines entry occupies, if nothing else but
    spaces and a trailing comment is on them; else None."""
    line_start = text.rfind("\n", 0, entry.start) + 1
    indent = text[line_start:entry.start]
    if indent.strip(" \t"):
        return None
    eol = text.find("\n", entry.end)
    rest = text[entry.end:eol if eol >= 0 else len(text)].strip()
    if eol < 0 or (rest and not rest.startswith("#")):
        return None
    newline = "\r\n" if text[eol - 1:eol] == "\r" else "\n"
    return line_start, eol + 1, indent, newline


def _indent_unit(text: str, message: Message) -> str:
    """The block's own indentation step (what its nested blocks use), else two spaces."""
    for entry in message.entries:
        if isinstance(entry.value, Message) and entry.value.entries:
            inner = entry.value.entries[0]
            outer_lines, inner_lines = _own_lines(text, entry), _own_lines(text, inner)
            if outer_lines and inner_lines and inner_lines[2].startswith(outer_lines[2]):
                step = inner_lines[2][len(outer_lines[2]):]
                if step:
                    return step
    return "  "


def _removal(text: str, entry: Entry):
    lines = _own_lines(text, entry)
    if lines is not None:
        return lines[0], lines[1], ""
    start = entry.start
    while start > 0 and text[start - 1] in " \t":
        start -= 1
    if start > 0 and text[start - 1] == "\n":    # first on its line: take the spaces after it
        start, end = entry.start, entry.end
        while end < len(text) and text[end] in " \t":
            end += 1
        return start, end, ""
    return start, entry.end, ""


def _param_items(params: Dict[str, object]) -> List[str]:
    return [f"{json.dumps(key)}: {json.dumps(value)}" for key, value in params.items()]


def _python_param_lines(rewrite: Rewrite, indent: str, unit: str, add_weight: Optional[str],
                        newline: str, width: int = 100) -> str:
    inner = indent + unit
    prefix = f"{inner}param_str: "
    fragments, current = [], "{"
    items = _param_items(rewrite.params)
    for number, item in enumerate(items):
        piece = item + ("}" if number == len(items) - 1 else ", ")
        if current != "{" and len(prefix) + len(current) + len(piece) + 2 > width:
            fragments.append(current)
            current = ""
        current += piece
    fragments.append(current if items else "{}")
    # Adjacent string literals are one value in protobuf text format: param_str is their join.
    literals = [quote_string(f) for f in fragments]
    lines = [f"{indent}python_param {{", f'{inner}module: "{MODULE}"', f'{inner}layer: "{rewrite.layer}"',
             prefix + literals[0]] + [" " * len(prefix) + lit for lit in literals[1:]] + [f"{indent}}}"]
    if add_weight is not None:
        lines.append(f"{indent}loss_weight: {add_weight}")
    return newline.join(lines) + newline


def _python_param_inline(rewrite: Rewrite, add_weight: Optional[str]) -> str:
    param_str = "{" + ", ".join(_param_items(rewrite.params)) + "}"
    block = (f'python_param {{ module: "{MODULE}" layer: "{rewrite.layer}" '
             f"param_str: {quote_string(param_str)} }}")
    return block + (f" loss_weight: {add_weight}" if add_weight is not None else "")


def _apply(text: str, edits) -> str:
    """text with each (start, end, replacement) applied; an edit overlapping an earlier one
    starts where that one ends."""
    out, at = [], 0
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1])):
        start = max(start, at)
        out.append(text[at:start])
        out.append(replacement)
        at = max(end, start)
    out.append(text[at:])
    return "".join(out)


def _num(value) -> str:
    """A number as prototxt and the report show it: 1, 0.25, 3.3333333333333335."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


# ---- command line ----------------------------------------------------------------------------

def report_lines(conversion: Conversion, source: str, output: str) -> List[str]:
    """What main prints: one line per converted layer (with its choices and warnings) and a
    summary."""
    if not conversion.rewrites:
        return [f"nothing to convert in {source} (no MultiBoxLoss, MultiBoxFocalLoss or FocalLoss "
                f"layer); {output} written unchanged"]
    lines = []
    for r in conversion.rewrites:
        shown = dict(r.shown, loss_weight=r.loss_weight)
        settings = ", ".join(f"{key} {_num(value)}" for key, value in shown.items())
        lines.append(f"{r.name} (line {r.line}): {r.old_type} -> Python {r.layer}: {settings}")
        lines += [f"    {note}" for note in r.notes]
        lines += [f"    WARNING: {warning}" for warning in r.warnings]
    counts = Counter(r.old_type for r in conversion.rewrites)
    kinds = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    total = len(conversion.rewrites)
    lines.append(f"converted {total} layer{'s' if total > 1 else ''} ({kinds}); wrote {output}")
    if any(r.old_type == "MultiBoxLoss" for r in conversion.rewrites):
        lines.append(HINT)
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="focal-loss-convert",
        description="Rewrite a net's C++ MultiBoxLoss, MultiBoxFocalLoss and FocalLoss layers into "
                    "focal_loss_layer's Python layers with the same settings; every other byte of "
                    "the prototxt is kept. Details: docs/convert.md.")
    parser.add_argument("input", help="the net's .prototxt")
    parser.add_argument("-o", "--output", required=True, help="where to write the converted net")
    args = parser.parse_args(argv)
    try:
        with open(args.input, "rb") as f:
            # surrogateescape: bytes that are not UTF-8 come back out exactly as they went in
            text = f.read().decode("utf-8", "surrogateescape")
        conversion = convert_text(text)
        with open(args.output, "wb") as f:
            f.write(conversion.text.encode("utf-8", "surrogateescape"))
    except (PrototxtSyntaxError, ConversionError) as error:
        print(f"focal-loss-convert: error: {args.input}: {error}", file=sys.stderr)
        return 2
    except OSError as error:     # its message names the file
        print(f"focal-loss-convert: error: {error}", file=sys.stderr)
        return 2
    print("\n".join(report_lines(conversion, args.input, args.output)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
