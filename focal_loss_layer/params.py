"""Parsing and validating the layer's param_str.

param_str is a JSON object or a Python dict literal, read with json.loads or ast.literal_eval:
never eval/exec, so a prototxt cannot run code. Empty means every default.

    {'focusing_parameter': 2, 'alpha': 0.25, 'class_balances': {1: 0.5, 3: 2},
     'normalization': 'positives', 'ignore_label': -1, 'label_smoothing': 0.0,
     'num_anchors': 9}
"""
import ast
import difflib
import json
import math
from dataclasses import dataclass, fields
from typing import Mapping, Optional, Tuple, Union

import numpy as np

from .errors import ParamError

NORMALIZATIONS = ("batch_size", "full", "valid", "positives", "none")

ClassBalances = Union[None, Tuple[float, ...], Tuple[Tuple[int, float], ...]]


@dataclass(frozen=True)
class FocalLossParams:
    """Validated layer settings. class_balances keeps the user's form until the class count
    is known (class_weights resolves it): a tuple of weights, or (class id, weight) pairs."""

    focusing_parameter: float = 2.0
    class_balances: ClassBalances = None
    class_balances_by_id: bool = False
    alpha: Optional[float] = None
    normalization: str = "batch_size"
    ignore_label: Optional[int] = None
    label_smoothing: float = 0.0
    num_anchors: int = 1
    # Whether param_str named `normalization` (a normalizer bottom then conflicts with it).
    normalization_given: bool = False

    def class_weights(self, num_classes: int) -> np.ndarray:
        """Per-class weights w_c, shape (C,), float64; class id c (1..C) is channel c-1."""
        weights = np.ones(num_classes)
        if self.class_balances is None:
            return weights
        if not self.class_balances_by_id:
            if len(self.class_balances) != num_classes:
                raise ParamError(
                    f"class_balances has {len(self.class_balances)} weights but the logits have "
                    f"C={num_classes} classes (bottom[0] axis 1): give one weight per class, or a "
                    f"dict {{class id 1..{num_classes}: weight}}")
            weights[:] = self.class_balances
            return weights
        for class_id, weight in self.class_balances:
            if not 1 <= class_id <= num_classes:
                raise ParamError(
                    f"class_balances names class id {class_id}, but class ids run 1..{num_classes} "
                    f"(C={num_classes} classes in bottom[0] axis 1; 0 is background)")
            weights[class_id - 1] = weight
        return weights


PARAM_KEYS = tuple(f.name for f in fields(FocalLossParams)
                   if f.name not in ("class_balances_by_id", "normalization_given"))
# Names other focal-loss code uses for our keys, to point users the right way.
_OTHER_NAMES = {"gamma": "focusing_parameter", "class_weights": "class_balances",
                "anchors": "num_anchors", "num_anchor": "num_anchors", "A": "num_anchors",
                "weights": "class_balances", "ignore_index": "ignore_label",
                "normalize": "normalization", "smoothing": "label_smoothing"}


def parse_param_str(param_str: str) -> FocalLossParams:
    """Parse and validate a param_str; raise ParamError naming the key and what is allowed."""
    raw = _read_mapping(param_str)
    unknown = [key for key in raw if key not in PARAM_KEYS]
    if unknown:
        key = unknown[0]
        hint = ([_OTHER_NAMES[key]] if key in _OTHER_NAMES
                else difflib.get_close_matches(str(key), PARAM_KEYS, n=1))
        raise ParamError(
            f"unknown param_str key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; allowed keys: {', '.join(PARAM_KEYS)}")
    settings = {}
    if "focusing_parameter" in raw:
        settings["focusing_parameter"] = _number(
            raw, "focusing_parameter", low=0.0, allowed="a finite number >= 0 (e.g. 2 or 0.5)")
    if raw.get("alpha") is not None:
        settings["alpha"] = _number(raw, "alpha", low=0.0, high=1.0,
                                    allowed="null/None (off) or a number in [0, 1]")
    if "normalization" in raw:
        settings.update(normalization=_normalization(raw["normalization"]),
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
        balances, by_id = _class_balances(raw["class_balances"])
        settings.update(class_balances=balances, class_balances_by_id=by_id)
    return FocalLossParams(**settings)


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


def _normalization(value) -> str:
    if isinstance(value, str) and value.lower() in NORMALIZATIONS:
        return value.lower()
    raise ParamError(f"normalization = {value!r} is not allowed: normalization must be one of "
                     + ", ".join(repr(n) for n in NORMALIZATIONS))


def _balance_weight(class_key, weight) -> float:
    if not (_is_number(weight) and math.isfinite(weight) and weight >= 0):
        raise ParamError(f"class_balances weight {weight!r} for class {class_key!r} is not "
                         "allowed: weights must be finite numbers >= 0")
    return float(weight)


def _class_balances(value):
    """A list/tuple of C weights, or a dict {class id (int or digit string): weight}."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ParamError("class_balances = [] is not allowed: give one weight per class")
        return tuple(_balance_weight(i + 1, w) for i, w in enumerate(value)), False
    if isinstance(value, dict):
        pairs = []
        for key, weight in value.items():
            class_id = _class_id(key)
            pairs.append((class_id, _balance_weight(key, weight)))
        return tuple(sorted(pairs)), True
    raise ParamError(f"class_balances = {value!r} is not allowed: class_balances must be a list "
                     "of C weights or a dict {class id 1..C: weight}")


def _class_id(key) -> int:
    if isinstance(key, str) and key.strip().lstrip("+").isdigit():
        key = int(key)
    if isinstance(key, int) and not isinstance(key, bool) and key >= 1:
        return key
    raise ParamError(f"class_balances key {key!r} is not allowed: keys are class ids 1..C "
                     "(ints or digit strings such as '3'; 0 is background)")
