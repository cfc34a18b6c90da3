"""MultiBoxFocalLossLayer's param_str: SSD's multibox_loss_param fields under their caffe.proto
names, defaults and meanings, LossParameter's `normalization`, and the focal keys.

    param_str: "{'num_classes': 21, 'conf_loss_type': 'LOGISTIC', 'mining_type': 'NONE',
                 'focusing_parameter': 2, 'alpha': 0.25}"

Enum values are strings, in caffe.proto's upper case or in lower case. Fields this layer does not
implement (HARD_EXAMPLE mining, CORNER_SIZE codes, share_location false, ...) are ParamErrors that
name them, so a net is never trained under settings other than the ones it states.
"""
import difflib
from dataclasses import dataclass, fields
from typing import Mapping, Optional

from .errors import ParamError
from .params import (
    FLT_MAX,
    INT32_MAX,
    checked_integer,
    checked_number,
    read_param_mapping,
    short_repr,
)

LOC_LOSS_TYPES = ("SMOOTH_L1", "L2")
CONF_LOSS_TYPES = ("SOFTMAX", "LOGISTIC")
MATCH_TYPES = ("PER_PREDICTION", "BIPARTITE")
CODE_TYPES = ("CORNER", "CENTER_SIZE")
MINING_TYPES = ("MAX_NEGATIVE", "NONE")
NORMALIZATIONS = ("VALID", "FULL", "BATCH_SIZE", "NONE")

# Fields of multibox_loss_param this layer does not implement: the value each must keep (its
# caffe.proto default, or None for "must be absent") and why.
UNSUPPORTED = {
    "share_location": (True, "per-class box predictions (share_location false) are not "
                             "implemented; SSD's nets share them"),
    "use_prior_for_matching": (True, "matching decoded predictions instead of the priors is not "
                                     "implemented; SSD matches the priors"),
    "encode_variance_in_target": (False, "C++ MultiBoxLoss's gradient for it omits the "
                                         "1/variance factor of its own loss; encode the variance "
                                         "in the box code (the default) instead"),
    "bp_inside": (False, "not implemented"),
    "map_object_to_agnostic": (False, "not implemented"),
    "use_prior_for_nms": (False, "mining with NMS (nms_param) is not implemented"),
    "nms_param": (None, "mining with NMS is not implemented"),
}
# Unsupported values of supported enum fields, and why.
UNSUPPORTED_VALUES = {
    ("mining_type", "HARD_EXAMPLE"): "HARD_EXAMPLE mining is not implemented (MAX_NEGATIVE, "
                                     "SSD's default, and NONE are)",
    ("code_type", "CORNER_SIZE"): "CORNER_SIZE box codes are not implemented (CORNER and "
                                  "CENTER_SIZE are)",
}


@dataclass(frozen=True)
class MultiBoxFocalLossParams:
    """Validated MultiBoxFocalLossLayer settings (caffe.proto's defaults)."""

    num_classes: int = 0
    background_label_id: int = 0
    match_type: str = "PER_PREDICTION"
    overlap_threshold: float = 0.5
    use_difficult_gt: bool = True
    neg_pos_ratio: float = 3.0
    neg_overlap: float = 0.5
    code_type: str = "CORNER"
    loc_loss_type: str = "SMOOTH_L1"
    loc_weight: float = 1.0
    mining_type: str = "MAX_NEGATIVE"
    conf_loss_type: str = "SOFTMAX"
    ignore_cross_boundary_bbox: bool = False
    sample_size: int = 64
    normalization: str = "VALID"
    focusing_parameter: float = 2.0
    alpha: Optional[float] = None


ENUMS = {"match_type": MATCH_TYPES, "code_type": CODE_TYPES + ("CORNER_SIZE",),
         "loc_loss_type": LOC_LOSS_TYPES, "mining_type": MINING_TYPES + ("HARD_EXAMPLE",),
         "conf_loss_type": CONF_LOSS_TYPES, "normalization": NORMALIZATIONS}
BOOLEANS = ("use_difficult_gt", "ignore_cross_boundary_bbox")
KEYS = tuple(f.name for f in fields(MultiBoxFocalLossParams)) + tuple(UNSUPPORTED) + (
    "do_neg_mining",)


def parse_multibox_param_str(param_str: str) -> MultiBoxFocalLossParams:
    """param_str read and checked; ParamError naming the key and what is allowed."""
    return parse_multibox_settings(read_param_mapping(param_str))


def parse_multibox_settings(raw: Mapping) -> MultiBoxFocalLossParams:
    """Settings already read into a mapping, checked; returns MultiBoxFocalLossParams."""
    unknown = [key for key in raw if key not in KEYS]
    if unknown:
        key = unknown[0]
        hint = difflib.get_close_matches(key, KEYS, n=1) if isinstance(key, str) else []
        hint = hint or (["focusing_parameter"] if key == "gamma" else [])
        raise ParamError(f"unknown param_str key {short_repr(key)}"
                         + (f" (did you mean {hint[0]!r}?)" if hint else "")
                         + f"; MultiBoxFocalLossLayer keys: {', '.join(KEYS)}")
    for key in [k for k, (kept, _) in UNSUPPORTED.items() if kept is not None] + [
            "do_neg_mining", *BOOLEANS]:
        if key in raw and not isinstance(raw[key], bool):
            raise ParamError(f"{key} = {short_repr(raw[key])} is not allowed: {key} must be "
                             "true or false")
    for key, (kept, why) in UNSUPPORTED.items():
        if key in raw and raw[key] != kept:
            allowed = "absent" if kept is None else f"{str(kept).lower()}"
            raise ParamError(f"{key} = {short_repr(raw[key])} is not supported by "
                             f"MultiBoxFocalLossLayer ({why}); it must be {allowed}")
    if "num_classes" not in raw:   # (the check comes after the keys: a typo names itself)
        raise ParamError("num_classes is required (as in multibox_loss_param): the classes of "
                         "mbox_conf, background included")
    settings = {"num_classes": checked_integer(raw, "num_classes", low=1,
                                               allowed=f"a whole number from 1 to {INT32_MAX}")}
    if "background_label_id" in raw:
        settings["background_label_id"] = checked_integer(
            raw, "background_label_id", low=0, allowed="a whole number >= 0 (a class id)")
    for key in ENUMS:
        if key in raw:
            settings[key] = _enum(raw, key)
    for key in BOOLEANS:
        if key in raw:
            settings[key] = raw[key]
    for key, low, high in (("overlap_threshold", 0.0, 1.0), ("neg_overlap", 0.0, 1.0),
                           ("neg_pos_ratio", 0.0, FLT_MAX), ("loc_weight", 0.0, FLT_MAX),
                           ("focusing_parameter", 0.0, FLT_MAX)):
        if key in raw:
            settings[key] = checked_number(raw, key, low=low, high=high,
                                           allowed=f"a finite number in [{low:g}, {high:.7g}]")
    if raw.get("alpha") is not None:
        settings["alpha"] = checked_number(raw, "alpha", low=0.0, high=1.0,
                                           allowed="null/None (off) or a number in [0, 1]")
    if "sample_size" in raw:
        settings["sample_size"] = checked_integer(raw, "sample_size", low=0,
                                                  allowed="a whole number >= 0")
    params = MultiBoxFocalLossParams(**settings)
    if "do_neg_mining" in raw and raw["do_neg_mining"] != (params.mining_type != "NONE"):
        raise ParamError(f"do_neg_mining = {short_repr(raw['do_neg_mining'])} contradicts "
                         f"mining_type = {params.mining_type!r} (do_neg_mining is deprecated in "
                         "caffe.proto; give mining_type alone)")
    _check_background(params)
    return params


def _enum(raw, key) -> str:
    value = raw[key]
    text = value.upper() if isinstance(value, str) else None
    if text not in ENUMS[key]:
        raise ParamError(f"{key} = {short_repr(value)} is not allowed: {key} must be one of "
                         + ", ".join(repr(v) for v in ENUMS[key]) + " (or lower case)")
    if (key, text) in UNSUPPORTED_VALUES:
        raise ParamError(f"{key} = {short_repr(value)} is not supported by "
                         f"MultiBoxFocalLossLayer: {UNSUPPORTED_VALUES[key, text]}")
    return text


def _check_background(params: MultiBoxFocalLossParams) -> None:
    bg, classes = params.background_label_id, params.num_classes
    if params.conf_loss_type == "SOFTMAX" and not bg < classes:
        raise ParamError(f"background_label_id = {bg} is not allowed with conf_loss_type SOFTMAX "
                         f"and num_classes = {classes}: it must be a class, 0..{classes - 1}")
    if params.conf_loss_type == "LOGISTIC" and bg != 0:
        raise ParamError(
            f"background_label_id = {bg} is not supported with conf_loss_type LOGISTIC: C++ "
            "MultiBoxLoss fills every LOGISTIC target with the id's value, which for an id other "
            "than 0 is not a probability; use 0")
