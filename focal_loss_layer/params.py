"""Parsing and validating the layers' param_str: one parser, driven by a per-layer LayerSpec
(its keys and defaults, allowed normalizations, class-id base, keys of the other layer).

param_str is a JSON object or a Python dict literal, read with json.loads or ast.literal_eval:
never eval/exec, so a prototxt cannot run code. Empty means every default.

FocalLossLayer (sigmoid; parse_param_str -> FocalLossParams), class ids 1..C, 0 = background:

    {'focusing_parameter': 2, 'alpha': 0.25, 'class_balances': {1: 0.5, 3: 2},
     'normalization': 'positives', 'ignore_label': -1, 'label_smoothing': 0.0,
     'num_anchors': 9}

SoftmaxFocalLossLayer (parse_softmax_param_str -> SoftmaxFocalLossParams), class ids 0..C−1:

    {'focusing_parameter': 2, 'alpha': 0.25, 'class_balances': {0: 0.1},
     'normalization': 'valid', 'ignore_label': 255}
"""
import ast
import difflib
import json
import math
from dataclasses import dataclass, fields
from typing import ClassVar, Mapping, Optional, Tuple, Union

import numpy as np

from .errors import ParamError

NORMALIZATIONS = ("batch_size", "full", "valid", "positives", "none")
# The softmax loss has one term per position: no 'positives' (sigmoid-only); 'full' counts positions.
SOFTMAX_NORMALIZATIONS = ("valid", "full", "batch_size", "none")

ClassBalances = Union[None, Tuple[float, ...], Tuple[Tuple[int, float], ...]]


class _ClassBalanced:
    """class_weights for a params dataclass with class_balances and class_balances_by_id.
    CLASS_ID_BASE: the layer's first class id (1: ids 1..C, 0 = background; 0: ids 0..C−1)."""

    CLASS_ID_BASE: ClassVar[int] = 1

    def class_weights(self, num_classes: int) -> np.ndarray:
        """Per-class weights w_c, shape (C,), float64; class id c is channel c − CLASS_ID_BASE."""
        weights = np.ones(num_classes)
        if self.class_balances is None:
            return weights
        ids = _id_range(self.CLASS_ID_BASE, num_classes)
        if not self.class_balances_by_id:
            if len(self.class_balances) != num_classes:
                raise ParamError(
                    f"class_balances has {len(self.class_balances)} weights but the logits have "
                    f"C={num_classes} classes (bottom[0] axis 1): give one weight per class, or a "
                    f"dict {{class id {ids}: weight}}")
            weights[:] = self.class_balances
            return weights
        for class_id, weight in self.class_balances:
            if not self.CLASS_ID_BASE <= class_id < self.CLASS_ID_BASE + num_classes:
                raise ParamError(
                    f"class_balances names class id {class_id}, but class ids run {ids} "
                    f"(C={num_classes} classes in bottom[0] axis 1"
                    + ("; 0 is background)" if self.CLASS_ID_BASE else ")"))
            weights[class_id - self.CLASS_ID_BASE] = weight
        return weights


def _id_range(base: int, num_classes) -> str:
    """'1..3' for base 1, C = 3; '0..C-1' for base 0 and C the letter."""
    last = f"{num_classes}-1" if isinstance(num_classes, str) else num_classes - 1
    return f"{base}..{num_classes if base else last}"


@dataclass(frozen=True)
class _SharedParams(_ClassBalanced):
    """The settings both layers have. class_balances keeps the user's form until the class
    count is known (class_weights resolves it): a tuple of weights, or (class id, weight) pairs."""

    focusing_parameter: float = 2.0
    class_balances: ClassBalances = None
    class_balances_by_id: bool = False
    alpha: Optional[float] = None
    normalization: str = "batch_size"
    ignore_label: Optional[int] = None
    # Whether param_str named `normalization` (a normalizer bottom then conflicts with it).
    normalization_given: bool = False


@dataclass(frozen=True)
class FocalLossParams(_SharedParams):
    """Validated FocalLossLayer settings; class ids 1..C, 0 = background."""

    label_smoothing: float = 0.0
    num_anchors: int = 1


@dataclass(frozen=True)
class SoftmaxFocalLossParams(_SharedParams):
    """Validated SoftmaxFocalLossLayer settings; class ids 0..C−1 (Caffe's SoftmaxWithLoss
    labels). alpha weighs class 0 by 1 − α and every other class by α (Detectron's
    SoftmaxFocalLoss); normalization defaults to valid, as SoftmaxWithLoss."""

    CLASS_ID_BASE: ClassVar[int] = 0
    normalization: str = "valid"


def _keys(params_type) -> Tuple[str, ...]:
    return tuple(f.name for f in fields(params_type)
                 if f.name not in ("class_balances_by_id", "normalization_given"))


@dataclass(frozen=True)
class LayerSpec:
    """What one layer's param_str may hold: the keys are params_type's fields, with its
    defaults; other_names point names used elsewhere to our keys; not_here: keys of the other
    layer that do not apply here, with why (named in the error instead of "unknown")."""

    layer: str
    params_type: type
    normalizations: Tuple[str, ...]
    other_names: Mapping[str, str]
    not_here: Mapping[str, str]

    @property
    def keys(self) -> Tuple[str, ...]:
        return _keys(self.params_type)


PARAM_KEYS = _keys(FocalLossParams)
SOFTMAX_PARAM_KEYS = _keys(SoftmaxFocalLossParams)
# Names other focal-loss code uses for our keys, to point users the right way.
_OTHER_NAMES = {"gamma": "focusing_parameter", "class_weights": "class_balances",
                "anchors": "num_anchors", "num_anchor": "num_anchors", "A": "num_anchors",
                "weights": "class_balances", "ignore_index": "ignore_label",
                "normalize": "normalization", "smoothing": "label_smoothing"}
_SIGMOID_ONLY = {
    "num_anchors": "FocalLossLayer's RetinaNet layout of A anchors' sigmoids in the channels; "
                   "the softmax runs over axis 1, so give the logits as (N, C, A, *spatial)",
    "label_smoothing": "FocalLossLayer smooths its per-class sigmoid targets; a softmax label is "
                       "one class index per position",
    "positives": "FocalLossLayer divides by its count of positive targets; a softmax loss has "
                 "one term per position, and 'valid' counts those, as SoftmaxWithLoss does",
}
SIGMOID = LayerSpec("FocalLossLayer", FocalLossParams, NORMALIZATIONS, _OTHER_NAMES, {})
SOFTMAX = LayerSpec("SoftmaxFocalLossLayer", SoftmaxFocalLossParams, SOFTMAX_NORMALIZATIONS,
                    {k: v for k, v in _OTHER_NAMES.items() if v in SOFTMAX_PARAM_KEYS},
                    _SIGMOID_ONLY)


def parse_param_str(param_str: str) -> FocalLossParams:
    """Parse and validate a FocalLossLayer param_str; raise ParamError naming the key and what is
    allowed."""
    return parse_layer_param_str(param_str, SIGMOID)


def parse_softmax_param_str(param_str: str) -> SoftmaxFocalLossParams:
    """Parse and validate a SoftmaxFocalLossLayer param_str (ParamError as parse_param_str)."""
    return parse_layer_param_str(param_str, SOFTMAX)


def parse_layer_param_str(param_str: str, spec: LayerSpec):
    """param_str read and checked against spec's keys; returns a spec.params_type."""
    raw = _read_mapping(param_str)
    keys = spec.keys
    unknown = [key for key in raw if key not in keys]
    if unknown:
        key = unknown[0]
        if key in spec.not_here:
            raise ParamError(
                f"param_str key {key!r} is sigmoid-only ({spec.not_here[key]}); {spec.layer} "
                f"keys: {', '.join(keys)}")
        hint = ([spec.other_names[key]] if key in spec.other_names
                else difflib.get_close_matches(str(key), keys, n=1))
        raise ParamError(
            f"unknown param_str key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; allowed keys: {', '.join(keys)}")
    settings = {}
    if "focusing_parameter" in raw:
        settings["focusing_parameter"] = _number(
            raw, "focusing_parameter", low=0.0, allowed="a finite number >= 0 (e.g. 2 or 0.5)")
    if raw.get("alpha") is not None:
        settings["alpha"] = _number(raw, "alpha", low=0.0, high=1.0,
                                    allowed="null/None (off) or a number in [0, 1]")
    if "normalization" in raw:
        settings.update(normalization=_normalization(raw["normalization"], spec),
                        normalization_given=True)
    if "num_anchors" in raw:
        value = raw["num_anchors"]
        if not (_is_number(value) and math.isfinite(value) and float(value).is_integer()
                and value >= 1):
            raise ParamError(f"num_anchors = {value!r} is not allowed: num_anchors must be a "
                             "whole number >= 1 (A anchors per position; logits (N, A*C, ...))")
        settings["num_anchors"] = int(value)
    if raw.get("ignore_label") is not None:
        settings["ignore_label"] = _integer(raw, "ignore_label")
    if "label_smoothing" in raw:
        settings["label_smoothing"] = _number(raw, "label_smoothing", low=0.0, high=1.0,
                                              high_open=True, allowed="a number in [0, 1)")
    if raw.get("class_balances") is not None:
        balances, by_id = _class_balances(raw["class_balances"], spec.params_type.CLASS_ID_BASE)
        settings.update(class_balances=balances, class_balances_by_id=by_id)
    return spec.params_type(**settings)


def _read_mapping(param_str: str) -> Mapping:
    text = (param_str or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ParamError(
                f"param_str {_short(text)} is not a JSON object or Python dict literal (only "
                "literals are read, never code); example: "
                "\"{'focusing_parameter': 2, 'alpha': 0.25}\"") from None
    if not isinstance(value, dict):
        raise ParamError(f"param_str must be a dict of settings, got {type(value).__name__} "
                         f"{_short(text)}; example: \"{{'focusing_parameter': 2}}\"")
    return value


def _short(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(raw, key, *, allowed, low=None, high=None, high_open=False) -> float:
    value = raw[key]
    ok = _is_number(value) and math.isfinite(value)
    ok = ok and (low is None or value >= low)
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
        raise ParamError(f"{key} = {value!r} is not allowed: {key} must be {allowed}")
    return float(value)


def _integer(raw, key) -> int:
    value = raw[key]
    if _is_number(value) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise ParamError(f"{key} = {value!r} is not allowed: {key} must be an integer "
                     "(e.g. -1 or 255) or null/None for no ignored label")


def _normalization(value, spec: LayerSpec) -> str:
    if isinstance(value, str) and value.lower() in spec.normalizations:
        return value.lower()
    why = (f" for {spec.layer}: {value.lower()!r} is sigmoid-only ({spec.not_here[value.lower()]})"
           if isinstance(value, str) and value.lower() in spec.not_here else "")
    raise ParamError(f"normalization = {value!r} is not allowed{why}: normalization must be one "
                     "of " + ", ".join(repr(n) for n in spec.normalizations))


def _balance_weight(class_key, weight) -> float:
    if not (_is_number(weight) and math.isfinite(weight) and weight >= 0):
        raise ParamError(f"class_balances weight {weight!r} for class {class_key!r} is not "
                         "allowed: weights must be finite numbers >= 0")
    return float(weight)


def _class_balances(value, base: int):
    """A list/tuple of C weights, or a dict {class id (int or digit string): weight}; class ids
    start at base."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ParamError("class_balances = [] is not allowed: give one weight per class")
        return tuple(_balance_weight(i + base, w) for i, w in enumerate(value)), False
    if isinstance(value, dict):
        pairs = []
        for key, weight in value.items():
            class_id = _class_id(key, base)
            pairs.append((class_id, _balance_weight(key, weight)))
        return tuple(sorted(pairs)), True
    raise ParamError(f"class_balances = {value!r} is not allowed: class_balances must be a list "
                     f"of C weights or a dict {{class id {_id_range(base, 'C')}: weight}}")


def _class_id(key, base: int) -> int:
    if isinstance(key, str) and key.strip().lstrip("+").isdigit():
        key = int(key)
    if isinstance(key, int) and not isinstance(key, bool) and key >= base:
        return key
    raise ParamError(f"class_balances key {key!r} is not allowed: keys are class ids "
                     f"{_id_range(base, 'C')} (ints or digit strings such as '3'"
                     + ("; 0 is background)" if base else ")"))
