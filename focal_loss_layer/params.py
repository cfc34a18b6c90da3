"""Parsing and validating the layers' param_str: one parser, driven by a per-layer LayerSpec
(its keys and defaults, allowed normalizations, class-id base, keys of the other layer).

param_str is a JSON object or a Python dict literal, read with json.loads or ast.literal_eval:
never eval/exec, so a prototxt cannot run code. Empty means every default. A key given twice,
or a class named twice in class_balances ({'1': 2, 1: 3}), is a ParamError, not a silent choice;
so is every value out of range, however written (a 400-digit integer, a non-ASCII digit).

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
import re
from dataclasses import dataclass, fields
from typing import ClassVar, Mapping, Optional, Tuple, Union

import numpy as np

from .errors import ParamError

NORMALIZATIONS = ("batch_size", "full", "valid", "positives", "none")
# The softmax loss has one term per position: no 'positives' (sigmoid-only); 'full' counts positions.
SOFTMAX_NORMALIZATIONS = ("valid", "full", "batch_size", "none")

ClassBalances = Union[None, Tuple[float, ...], Tuple[Tuple[int, float], ...]]
# Integer settings live in Caffe's int32 (LossParameter.ignore_label is one, blob dims are too).
INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1
# The largest float32: γ and weights beyond it would be inf inside the float32 kernels.
FLT_MAX = float(np.finfo(np.float32).max)


class _ClassBalanced:
    """class_weights for a params dataclass with class_balances and class_balances_by_id.
    CLASS_ID_BASE: the layer's first class id (1: ids 1..C, 0 = background; 0: ids 0..C−1)."""

    CLASS_ID_BASE: ClassVar[int] = 1

    def class_weights(self, num_classes: int) -> np.ndarray:
        """Per-class weights w_c, shape (C,), float64; class id c is channel c − CLASS_ID_BASE."""
        weights = np.ones(num_classes)
        if self.class_balances is None:
            return weights
        ids = class_id_range(self.CLASS_ID_BASE, num_classes)
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


def class_id_range(base: int, num_classes) -> str:
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
    return parse_layer_settings(read_param_mapping(param_str), spec)


def parse_layer_settings(raw: Mapping, spec: LayerSpec):
    """Settings already read into a mapping (param_str's dict, or NetSpec's keywords) checked
    against spec's keys; returns a spec.params_type. ParamError for anything not allowed."""
    keys = spec.keys
    unknown = [key for key in raw if key not in keys]
    if unknown:
        key = unknown[0]
        if key in spec.not_here:
            raise ParamError(
                f"param_str key {key!r} is sigmoid-only ({spec.not_here[key]}); {spec.layer} "
                f"keys: {', '.join(keys)}")
        hint = ([spec.other_names[key]] if key in spec.other_names
                else difflib.get_close_matches(key, keys, n=1) if isinstance(key, str) else [])
        raise ParamError(
            f"unknown param_str key {short_repr(key)}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; allowed keys: {', '.join(keys)}")
    settings = {}
    if "focusing_parameter" in raw:
        settings["focusing_parameter"] = checked_number(
            raw, "focusing_parameter", low=0.0, high=FLT_MAX,
            allowed=f"a finite number >= 0 and <= {FLT_MAX:.7g} (float32's largest; e.g. 2 or 0.5)")
    if raw.get("alpha") is not None:
        settings["alpha"] = checked_number(raw, "alpha", low=0.0, high=1.0,
                                    allowed="null/None (off) or a number in [0, 1]")
    if "normalization" in raw:
        settings.update(normalization=_normalization(raw["normalization"], spec),
                        normalization_given=True)
    if "num_anchors" in raw:
        settings["num_anchors"] = checked_integer(
            raw, "num_anchors", low=1,
            allowed=f"a whole number >= 1 and <= {INT32_MAX} (A anchors per position; logits "
                    "(N, A*C, ...))")
    if raw.get("ignore_label") is not None:
        settings["ignore_label"] = checked_integer(
            raw, "ignore_label", low=INT32_MIN,
            allowed=f"an integer (e.g. -1 or 255) in {INT32_MIN}..{INT32_MAX} (Caffe's int32), "
                    "or null/None for no ignored label")
    if "label_smoothing" in raw:
        settings["label_smoothing"] = checked_number(raw, "label_smoothing", low=0.0, high=1.0,
                                              high_open=True, allowed="a number in [0, 1)")
    if raw.get("class_balances") is not None:
        balances, by_id = _class_balances(raw["class_balances"], spec.params_type.CLASS_ID_BASE)
        settings.update(class_balances=balances, class_balances_by_id=by_id)
    return spec.params_type(**settings)


_NOT_A_DICT = ("param_str {} is not a JSON object or Python dict literal (only literals are "
               "read, never code); example: \"{{'focusing_parameter': 2, 'alpha': 0.25}}\"")


def read_param_mapping(param_str: str) -> Mapping:
    text = (param_str or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except ParamError:
        raise
    except (ValueError, RecursionError):
        value = _python_literal(text)
    if not isinstance(value, dict):
        raise ParamError(f"param_str must be a dict of settings, got {type(value).__name__} "
                         f"{_short(text)}; example: \"{{'focusing_parameter': 2}}\"")
    return value


def _python_literal(text: str):
    """ast.literal_eval of text (never code), refusing a key given twice in one dict, which
    literal_eval, like json.loads, would let the last one win silently."""
    try:
        tree = ast.parse(text, mode="eval")
        dict_keys = [[ast.literal_eval(key) for key in node.keys]
                     for node in ast.walk(tree) if isinstance(node, ast.Dict)]
        value = ast.literal_eval(tree)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ParamError(_NOT_A_DICT.format(_short(text))) from None
    for keys in dict_keys:
        _unique_keys([(key, None) for key in keys])
    return value


def _unique_keys(pairs) -> dict:
    """dict(pairs); ParamError if a key comes twice (1, 1.0 and True count as one, as in a
    Python dict)."""
    result = {}
    for key, value in pairs:
        if key in result:
            first = next(k for k in result if k == key)
            also = f" (the second time as {short_repr(key)})" if repr(first) != repr(key) else ""
            raise ParamError(f"param_str gives the key {short_repr(first)} twice in one dict{also}: "
                             "give each key once (otherwise the last would silently win)")
        result[key] = value
    return result


def _short(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def short_repr(value, limit: int = 60) -> str:
    """repr(value), shortened: a 400-digit number or a long string would bury the message."""
    if isinstance(value, int) and value.bit_length() > 3 * limit:
        # repr of an int over 4300 digits raises; its length is all the reader needs.
        return f"<an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits>"
    try:
        text = repr(value)
    except (ValueError, RecursionError):     # a list holding such an int, or nested very deep
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite_float(value) -> Optional[float]:
    """value as a finite float, or None: not a number (numpy's count), a bool, NaN or ±inf, or
    an int beyond float range (float(10**400) raises OverflowError)."""
    if not (_is_number(value) or isinstance(value, (np.integer, np.floating))):
        return None
    try:
        result = float(value)
    except OverflowError:
        return None
    return result if math.isfinite(result) else None


def whole_number(value) -> Optional[int]:
    """value as an int if it is a whole number (an int, or a float without fraction; numpy's as
    well; never a bool), else None. An int is never converted to float: float(10**400) raises."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def checked_number(raw, key, *, allowed, low=None, high=None, high_open=False) -> float:
    value = raw[key]
    number = finite_float(value)
    ok = number is not None
    ok = ok and (low is None or number >= low)
    ok = ok and (high is None or (number < high if high_open else number <= high))
    if not ok:
        raise ParamError(f"{key} = {short_repr(value)} is not allowed: {key} must be {allowed}")
    return number


def checked_integer(raw, key, *, low, allowed) -> int:
    value = raw[key]
    number = whole_number(value)
    if number is None or not low <= number <= INT32_MAX:
        raise ParamError(f"{key} = {short_repr(value)} is not allowed: {key} must be {allowed}")
    return number


def _normalization(value, spec: LayerSpec) -> str:
    if isinstance(value, str) and value.lower() in spec.normalizations:
        return value.lower()
    why = (f" for {spec.layer}: {value.lower()!r} is sigmoid-only ({spec.not_here[value.lower()]})"
           if isinstance(value, str) and value.lower() in spec.not_here else "")
    raise ParamError(f"normalization = {short_repr(value)} is not allowed{why}: normalization must be one "
                     "of " + ", ".join(repr(n) for n in spec.normalizations))


def _balance_weight(class_key, weight) -> float:
    number = finite_float(weight)
    if number is None or not 0 <= number <= FLT_MAX:
        raise ParamError(f"class_balances weight {short_repr(weight)} for class {short_repr(class_key)} is "
                         f"not allowed: weights must be finite numbers >= 0 and <= {FLT_MAX:.7g} "
                         "(float32's largest: the layers compute in float32)")
    return number


def _class_balances(value, base: int):
    """A list/tuple of C weights, or a dict {class id (int or digit string): weight}; class ids
    start at base, and no class may be named twice ({'1': 2, 1: 3})."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ParamError("class_balances = [] is not allowed: give one weight per class")
        return tuple(_balance_weight(i + base, w) for i, w in enumerate(value)), False
    if isinstance(value, dict):
        keys_by_id = {}
        pairs = []
        for key, weight in value.items():
            class_id = _class_id(key, base)
            if class_id in keys_by_id:
                raise ParamError(
                    f"class_balances gives class {class_id} two weights (keys "
                    f"{short_repr(keys_by_id[class_id])} and {short_repr(key)}): name each class id once")
            keys_by_id[class_id] = key
            pairs.append((class_id, _balance_weight(key, weight)))
        return tuple(sorted(pairs)), True
    raise ParamError(f"class_balances = {short_repr(value)} is not allowed: class_balances must be a "
                     f"list of C weights or a dict {{class id {class_id_range(base, 'C')}: weight}}")


# ASCII digits only: str.isdigit() and int() also take '²' or '٣'. At most 10 digits after any
# leading zeros (int32), so int() never meets a number past its 4300-digit limit.
_CLASS_ID_TEXT = re.compile(r"\s*\+?0*([0-9]{1,10})\s*")


def _class_id(key, base: int) -> int:
    class_id = None
    if isinstance(key, str):
        match = _CLASS_ID_TEXT.fullmatch(key)
        class_id = int(match[1]) if match else None
    elif isinstance(key, int) and not isinstance(key, bool):
        class_id = key
    if class_id is not None and base <= class_id <= INT32_MAX:
        return class_id
    raise ParamError(f"class_balances key {short_repr(key)} is not allowed: keys are class ids "
                     f"{class_id_range(base, 'C')} (ints or ASCII digit strings such as '3'"
                     + ("; 0 is background)" if base else ")"))
