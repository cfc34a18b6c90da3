"""Class balances from data: per-class weights for param_str's `class_balances`.

    python -m focal_loss_layer.balances results/data/digit_grid/train.txt --ignore-label -1
    python -m focal_loss_layer.balances seg_train.txt --ignore-label 255 --layer softmax

reads the labels an HDF5Data layer would feed the loss (one .h5 file, or a `source` list of .h5
files), counts the samples of each class, and prints the counts and a param_str fragment
`'class_balances': [...]`, one weight per class of the layer the weights are for (--layer):

    sigmoid (default): FocalLossLayer, class ids 1..C, 0 = background (never weighed).
    softmax: SoftmaxFocalLossLayer, class ids 0..C−1; every label is a class, 0 included.

From Python: `class_counts(labels, ..., layer=...)` and `class_balances(counts, ..., layer=...)`.

Counts, n_c per class id c (background and ignored entries never count):
    class indices (N, *spatial) or (N, 1, *spatial): n_c = #{entries equal to c}, ignore_label
        entries skipped; for the sigmoid layer 0 is background and c runs 1..C, for the softmax
        layer c runs 0..C−1.
    per-class targets (N, C, *spatial) in [0, 1] (sigmoid layer only): n_c = Σ of channel c−1
        over its entries that are not ignore_label (soft targets count fractionally).

Weights, normalised to mean 1 over the C classes:
    "inverse_frequency":  w_c ∝ 1 / n_c
    "effective_number":   w_c ∝ 1 / E(n_c),  E(n) = (1 − β^n) / (1 − β)   (Cui et al., CVPR 2019,
        "Class-Balanced Loss Based on Effective Number of Samples"), β ∈ [0, 1), default 0.999.
        β = 0 gives equal weights; β → 1 gives inverse frequency, since E(n) → n. 1 − β^n is
        computed as −expm1(n·log β): for β near 1 the naive 1 − β**n loses most of its digits.

A class with no samples (n_c = 0) has no finite weight under either formula (1/0; E(0) = 0).
It gets the largest weight among the classes that have samples, i.e. it is treated as being as
rare as the rarest seen class, and an UnseenClassWarning says so. Not 0: class_balances weighs
both the positive and the negative terms of a class, so 0 would switch that class's logits off
entirely, which is a decision to make by hand, not a default.
"""
import argparse
import difflib
import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .errors import InputError, ParamError
from .labels import CLASSES, INDICES, TARGETS, check_labels
from .params import (
    INT32_MAX,
    INT32_MIN,
    SIGMOID,
    SOFTMAX,
    LayerSpec,
    class_id_range,
    finite_float,
    short_repr,
    whole_number,
)

METHODS = ("effective_number", "inverse_frequency")
FORMS = ("auto", INDICES, TARGETS)
DEFAULT_BETA = 0.999
# The layer the weights are for: its class ids (params' CLASS_ID_BASE) and the label forms it reads.
LAYERS = {"sigmoid": SIGMOID, "softmax": SOFTMAX}


class UnseenClassWarning(UserWarning):
    """Some class has no samples; it was given the largest weight among the seen classes."""


@dataclass
class LabelCounts:
    """Samples per class and what was decided on the way.

    counts: (C,) float64, n_c for the layer's class ids (channel c − first_class_id).
    background: index-form entries equal to 0 for the sigmoid layer (None for per-class targets
    and for the softmax layer, where 0 is a class).
    entries / ignored: label values read / skipped as ignore_label.
    layer: the layer the counts are for ("FocalLossLayer" or "SoftmaxFocalLossLayer")."""

    counts: np.ndarray
    form: str
    form_reason: str
    num_classes_reason: str
    entries: int
    ignored: int
    background: Optional[int]
    files: Tuple[str, ...] = field(default=())
    layer: str = SIGMOID.layer
    first_class_id: int = 1

    @property
    def num_classes(self) -> int:
        return len(self.counts)

    @property
    def class_ids(self) -> List[int]:
        return list(range(self.first_class_id, self.first_class_id + self.num_classes))


# ---------------------------------------------------------------- counting

def class_counts(labels, num_classes: Optional[int] = None, form: str = "auto",
                 ignore_label: Optional[int] = None, layer: str = "sigmoid") -> np.ndarray:
    """n_c per class, shape (C,) float64: classes 1..C for layer "sigmoid" (FocalLossLayer,
    0 = background), 0..C−1 for layer "softmax" (SoftmaxFocalLossLayer). num_classes None infers
    C (targets: axis 1; indices: the largest label). form: "auto", "indices" or "targets" (see
    count_labels)."""
    return count_labels(labels, num_classes, form, ignore_label, layer=layer).counts


def count_labels(labels, num_classes: Optional[int] = None, form: str = "auto",
                 ignore_label: Optional[int] = None, where: str = "labels",
                 layer: str = "sigmoid") -> LabelCounts:
    """class_counts, with the form and class count it settled on and the entry totals.

    Layer "sigmoid": form "auto" decides by shape, then by value: (N,) and (N, 1, ...) are
    indices; an axis 1 that differs from num_classes means indices; otherwise targets if every
    non-ignored value lies in [0, 1], else indices. Only index labels (N, W) holding nothing but
    0 and 1 are truly ambiguous with (N, C) targets; auto reads them as targets and form_reason
    says so. Layer "softmax" reads class indices only (one class per position)."""
    num_classes, ignore_label, spec = _check_settings(num_classes, form, ignore_label, layer)
    return _combine([_tally(np.asarray(labels), where, num_classes, form, ignore_label, spec)],
                    num_classes, spec)


@dataclass
class _Tally:
    """One array's contribution. per_value: bincount over labels 0..max (indices) or Σ per
    channel (targets)."""

    where: str
    form: str
    form_reason: str
    per_value: np.ndarray
    entries: int
    ignored: int


def _tally(labels: np.ndarray, where: str, num_classes: Optional[int], form: str,
           ignore_label: Optional[int], spec: LayerSpec) -> _Tally:
    if labels.size == 0 or labels.ndim == 0:
        raise InputError(f"{where} holds no labels (shape {labels.shape}); expected class "
                         "indices (N, *spatial) or per-class targets (N, C, *spatial)")
    if labels.dtype.kind not in "biuf":
        raise InputError(f"{where} has dtype {labels.dtype}; labels must be numbers")
    valid = labels != ignore_label if ignore_label is not None else np.ones(labels.shape, bool)
    if spec is SOFTMAX:
        form, reason = INDICES, f"{spec.layer} reads one class index 0..C-1 per position"
        check_labels(labels, CLASSES, num_classes, ignore_label, where)
    else:
        form, reason = _resolve_form(labels, valid, form, num_classes, where)
        check_labels(labels, form, num_classes, ignore_label, where)
    if form == TARGETS:
        # Σ over every axis but the class axis; ignored entries contribute nothing.
        axes = (0,) + tuple(range(2, labels.ndim))
        per_value = np.where(valid, labels, 0).sum(axis=axes, dtype=np.float64)
    else:
        per_value = np.bincount(labels[valid].astype(np.int64).ravel())
    return _Tally(where, form, reason, per_value, labels.size, labels.size - int(valid.sum()))


def _check_settings(num_classes, form, ignore_label, layer):
    """(num_classes, ignore_label, the layer's LayerSpec); ParamError for a value not allowed."""
    spec = _layer_spec(layer)
    first = spec.params_type.CLASS_ID_BASE
    if num_classes is not None and not _int_in(num_classes, 1, INT32_MAX):
        raise ParamError(f"num_classes = {short_repr(num_classes)} is not allowed: num_classes must be "
                         f"an integer 1..{INT32_MAX} (the C of classes "
                         f"{class_id_range(first, 'C')}), or None to infer it")
    if form not in FORMS:
        raise ParamError(f"form = {form!r} is not allowed: form must be one of "
                         + ", ".join(repr(f) for f in FORMS))
    if spec is SOFTMAX and form == TARGETS:
        raise ParamError(f"form = {form!r} is not allowed with layer 'softmax': {spec.layer} "
                         "reads one class index per position, (N, *spatial) or (N, 1, *spatial); "
                         "form must be 'auto' or 'indices' (per-class targets are for layer "
                         "'sigmoid', FocalLossLayer)")
    if ignore_label is not None and not _int_in(ignore_label, INT32_MIN, INT32_MAX):
        raise ParamError(f"ignore_label = {short_repr(ignore_label)} is not allowed: ignore_label must "
                         f"be an integer (e.g. -1 or 255) in {INT32_MIN}..{INT32_MAX}, as the "
                         "layers take it, or None")
    return (None if num_classes is None else int(num_classes),
            None if ignore_label is None else int(ignore_label), spec)


def _layer_spec(layer) -> LayerSpec:
    if isinstance(layer, str) and layer in LAYERS:
        return LAYERS[layer]
    raise ParamError(f"layer = {layer!r} is not allowed: layer must be one of "
                     + ", ".join(f"{name!r} ({_describe(spec)})" for name, spec in LAYERS.items()))


def _describe(spec: LayerSpec) -> str:
    """'FocalLossLayer, class ids 1..C, 0 = background' and the like."""
    first = spec.params_type.CLASS_ID_BASE
    return (f"{spec.layer}, class ids {class_id_range(first, 'C')}"
            + (", 0 = background" if first else ", 0 is a class"))


def _int_in(value, low: int, high: int) -> bool:
    """value is a whole number in low..high (an int or a float without fraction, numpy's too)."""
    number = whole_number(value)
    return number is not None and low <= number <= high


def _resolve_form(labels, valid, form, num_classes, where) -> Tuple[str, str]:
    shape = labels.shape
    if form == TARGETS:
        if labels.ndim < 2:
            raise InputError(f"{where} has shape {shape}, but per-class targets need shape "
                             "(N, C, *spatial)")
        if num_classes is not None and shape[1] != num_classes:
            raise InputError(f"{where} has shape {shape}: per-class targets have C = {shape[1]} "
                             f"classes on axis 1, but num_classes = {num_classes}")
        return TARGETS, "given"
    if form == INDICES:
        return INDICES, "given"
    if labels.ndim == 1:
        return INDICES, f"shape {shape} is (N,)"
    if shape[1] == 1:
        return INDICES, f"shape {shape} has axis 1 of size 1: (N, 1, *spatial)"
    if num_classes is not None and shape[1] != num_classes:
        return INDICES, f"axis 1 of shape {shape} is not num_classes = {num_classes}"
    in_unit = (labels >= 0) & (labels <= 1)
    if np.all(in_unit | ~valid):
        return TARGETS, (f"shape {shape} with every value in [0, 1]: (N, C, *spatial) with "
                         "C on axis 1; say form indices if axis 1 is spatial")
    return INDICES, f"shape {shape} holds values outside [0, 1]"


def _combine(tallies: Sequence[_Tally], num_classes: Optional[int],
             spec: LayerSpec) -> LabelCounts:
    first = tallies[0]
    for other in tallies[1:]:
        if other.form != first.form:
            raise InputError(
                f"{first.where} reads as {first.form} ({first.form_reason}) but {other.where} "
                f"as {other.form} ({other.form_reason}); say which form all files hold")
        if first.form == TARGETS and len(other.per_value) != len(first.per_value):
            raise InputError(f"{first.where} has C = {len(first.per_value)} target channels "
                             f"(axis 1) but {other.where} has {len(other.per_value)}")
    entries = sum(t.entries for t in tallies)
    ignored = sum(t.ignored for t in tallies)
    if entries == ignored:
        raise InputError(f"every one of the {entries} label value(s) in {_names(tallies)} equals "
                         "ignore_label: no labels left to count")
    if first.form == TARGETS:
        counts = np.sum([t.per_value for t in tallies], axis=0)
        return LabelCounts(counts, TARGETS, first.form_reason, "axis 1 of the targets", entries,
                           ignored, None, ())
    width = max(len(t.per_value) for t in tallies)
    per_value = np.sum([np.pad(t.per_value, (0, width - len(t.per_value))) for t in tallies],
                       axis=0)
    if spec is SOFTMAX:
        # Every label is a class, 0 included: no background column to drop.
        num_classes, reason = ((width, "inferred: the largest label + 1") if num_classes is None
                               else (num_classes, "given"))
        counts = np.zeros(num_classes)
        counts[:width] = per_value
        return LabelCounts(counts, INDICES, first.form_reason, reason, entries, ignored, None,
                           (), spec.layer, 0)
    if num_classes is None:
        if width <= 1:
            raise InputError(f"every non-ignored label in {_names(tallies)} is 0 (background): "
                             "no class has a sample, so C cannot be inferred and no class has a "
                             "weight")
        num_classes, reason = width - 1, "inferred: the largest label"
    else:
        reason = "given"
    counts = np.zeros(num_classes)
    counts[:width - 1] = per_value[1:]
    return LabelCounts(counts, INDICES, first.form_reason, reason, entries, ignored,
                       int(per_value[0]), ())


def _names(tallies) -> str:
    return ", ".join(t.where for t in tallies[:3]) + (" ..." if len(tallies) > 3 else "")


# ---------------------------------------------------------------- weights

def class_balances(counts, method: str = "effective_number",
                   beta: Optional[float] = None, layer: str = "sigmoid") -> np.ndarray:
    """Per-class weights w_c from counts n_c, shape (C,), mean 1 over the C classes.

        inverse_frequency:  w_c ∝ 1/n_c
        effective_number:   w_c ∝ (1 − β)/(1 − β^n_c), β ∈ [0, 1), default 0.999 (Cui et al. 2019)

    Classes with n_c = 0 get the largest weight of the seen classes (an UnseenClassWarning says
    which); see the module docstring for why not 0. beta is only read by effective_number.
    layer ("sigmoid": counts of class ids 1..C, "softmax": 0..C−1) only names the class ids in
    messages; the weights are the same."""
    beta = _check_method(method, beta)
    first = _layer_spec(layer).params_type.CLASS_ID_BASE
    n = _check_counts(counts, first)
    seen = n > 0
    weights = np.empty_like(n)
    if method == "inverse_frequency":
        weights[seen] = 1.0 / n[seen]
    else:
        with np.errstate(divide="ignore"):  # log(0) = -inf is right for beta = 0: beta^n = 0
            log_beta = np.log(beta)
        weights[seen] = (1.0 - beta) / -np.expm1(n[seen] * log_beta)
    if not seen.all():
        largest = weights[seen].max()
        weights[~seen] = largest
        unseen = np.flatnonzero(~seen) + first
        listed = ", ".join(str(c) for c in unseen[:10]) + (" ..." if len(unseen) > 10 else "")
        warnings.warn(
            f"{len(unseen)} class(es) have no samples (n_c = 0): class id(s) {listed}. Their "
            f"{method} weight is undefined (infinite), so they get the largest weight of the seen "
            "classes, as rare as the rarest seen class; not 0, which would switch their logits "
            "off (class_balances weighs both terms). Edit their weights by hand to choose "
            "otherwise.", UnseenClassWarning, stacklevel=2)
    return weights / weights.mean()


def _check_method(method, beta) -> float:
    """beta to use (DEFAULT_BETA for None); ParamError for a bad method or beta."""
    if method not in METHODS:
        hint = ([m for m in METHODS if str(method) and m.startswith(str(method))]
                or difflib.get_close_matches(str(method), METHODS, n=1))
        raise ParamError(f"method = {method!r} is not allowed"
                         + (f" (did you mean {hint[0]!r}?)" if hint else "")
                         + "; method must be one of " + ", ".join(repr(m) for m in METHODS))
    if method == "inverse_frequency" and beta is not None:
        raise ParamError(f"beta = {short_repr(beta)} is not allowed with method 'inverse_frequency': beta "
                         "is read only by method 'effective_number'")
    number = finite_float(DEFAULT_BETA if beta is None else beta)
    if number is None or not 0 <= number < 1:
        raise ParamError(f"beta = {short_repr(beta)} is not allowed: beta must be a number in [0, 1) "
                         "(0 gives equal weights, near 1 inverse frequency; the paper uses 0.9 "
                         "to 0.9999); for the limit beta = 1 use method 'inverse_frequency'")
    return number


def _check_counts(counts, first_class_id: int) -> np.ndarray:
    try:
        n = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):   # 'a', [1, [2]], 10**400
        raise InputError(f"counts = {short_repr(counts)} is not allowed: counts must be numbers, "
                         "one per class, shape (C,)") from None
    if n.ndim != 1 or n.size == 0:
        raise InputError(f"counts must be one count per class, shape (C,); got shape {n.shape}")
    bad = ~(np.isfinite(n) & (n >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"counts hold {n[i].item()!r} for class {i + first_class_id}: counts "
                         "must be finite and >= 0")
    if not n.any():
        raise InputError(f"every one of the {n.size} class counts is 0: no class has a sample, "
                         "so there is nothing to balance")
    return n


def format_class_balances(weights, digits: int = 4) -> str:
    """The param_str fragment "'class_balances': [w1, ..., wC]", each weight rounded to `digits`
    significant digits (%g: 1.0 prints as 1)."""
    _check_digits(digits)
    return "'class_balances': [" + ", ".join(f"{w:.{int(digits)}g}" for w in weights) + "]"


def _check_digits(digits):
    if not _int_in(digits, 1, 17):
        raise ParamError(f"digits = {short_repr(digits)} is not allowed: digits must be an integer "
                         "1..17")


# ---------------------------------------------------------------- HDF5 files

def count_label_file(path: str, dataset: str = "label", num_classes: Optional[int] = None,
                     form: str = "auto", ignore_label: Optional[int] = None,
                     layer: str = "sigmoid") -> LabelCounts:
    """Counts over one HDF5 file, or over every file of an HDF5Data `source` list, for layer
    "sigmoid" or "softmax" (as count_labels).

    A source list is read as Caffe reads it: whitespace-separated paths (`file >> line`), each
    opened as written, so relative paths are relative to the current working directory, not to
    the list's folder. Run this from where `caffe train` runs, and it counts what Caffe reads."""
    num_classes, ignore_label, spec = _check_settings(num_classes, form, ignore_label, layer)
    files = hdf5_files(path)
    tallies = [_tally(_read_dataset(f, dataset), f"{f} dataset {dataset!r}", num_classes, form,
                      ignore_label, spec) for f in files]
    counts = _combine(tallies, num_classes, spec)
    counts.files = tuple(files)
    return counts


def _h5py():
    """h5py, which only the file readers need (not the layer); InputError saying how to get it."""
    try:
        import h5py
    except ImportError:
        raise InputError("reading HDF5 label files needs h5py, which this Python cannot import: "
                         "pip install h5py (or pip install 'focal_loss_layer[balances]')") from None
    return h5py


def hdf5_files(path: str) -> List[str]:
    """[path] for an HDF5 file; the paths a source list names, each checked to be HDF5."""
    h5py = _h5py()
    if not os.path.isfile(path):
        raise InputError(f"{path!r} is not a file: give an HDF5 file or an HDF5Data source list")
    if h5py.is_hdf5(path):
        return [path]
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path!r} is neither an HDF5 file nor a text list of HDF5 files "
                         "(HDF5Data's source)") from None
    listed = [(number, name) for number, line in enumerate(lines, 1) for name in line.split()]
    if not listed:
        raise InputError(f"source list {path!r} lists no HDF5 files (it is empty or blank)")
    for number, name in listed:
        if not os.path.isfile(name):
            beside = os.path.join(os.path.dirname(path), name)
            hint = (f"; it exists next to the list, as {beside!r}, but Caffe opens listed paths "
                    "from the working directory: run from the list's folder or list absolute "
                    "paths" if not os.path.isabs(name) and os.path.isfile(beside) else "")
            raise InputError(f"{name!r} (line {number} of source list {path!r}) is not a file, "
                             f"seen from the working directory {os.getcwd()!r}{hint}")
        if not h5py.is_hdf5(name):
            raise InputError(f"{name!r} (line {number} of source list {path!r}) is not an "
                             "HDF5 file")
    return [name for _, name in listed]


def _read_dataset(path: str, name: str) -> np.ndarray:
    h5py = _h5py()
    with h5py.File(path, "r") as f:
        found = f.get(name)
        if not isinstance(found, h5py.Dataset):
            present = []
            f.visititems(lambda key, obj: present.append(key)
                         if isinstance(obj, h5py.Dataset) else None)
            listed = ", ".join(repr(p) for p in present) or "none"
            raise InputError(f"{path} has no dataset {name!r}; datasets present: {listed} "
                             "(choose one with --dataset / dataset=)")
        return found[()]


# ---------------------------------------------------------------- command line

def _choices(values) -> str:
    return "{" + ",".join(values) + "}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m focal_loss_layer.balances",
        description="Count the samples of each class in HDF5 labels and print class_balances "
                    "weights (mean 1) for the param_str of FocalLossLayer (--layer sigmoid) or "
                    "SoftmaxFocalLossLayer (--layer softmax).")
    parser.add_argument("path", help="an HDF5 file, or an HDF5Data source list (.txt of .h5 "
                                     "paths; relative paths are read from the working directory, "
                                     "as Caffe does)")
    parser.add_argument("--dataset", default="label", help="label dataset name (default: label)")
    parser.add_argument("--layer", default="sigmoid", choices=tuple(LAYERS),
                        help="the layer the weights are for: sigmoid (default) = "
                             f"{_describe(SIGMOID)}; softmax = {_describe(SOFTMAX)}")
    # The choices are shown as argparse shows them, but checked by count_labels/class_balances,
    # whose errors name the bad value and what is allowed (as the Python API's do).
    parser.add_argument("--form", default="auto", metavar=_choices(FORMS),
                        help="auto (default), indices or targets (targets: --layer sigmoid only)")
    parser.add_argument("--num-classes", type=int, help="C; default: inferred (targets: axis 1, "
                                                        "indices: the largest label)")
    parser.add_argument("--ignore-label", type=int, help="label value to skip")
    parser.add_argument("--method", default="effective_number", metavar=_choices(METHODS),
                        help="effective_number (default) or inverse_frequency")
    parser.add_argument("--beta", type=float, help=f"effective_number's beta in [0, 1) "
                                                   f"(default {DEFAULT_BETA})")
    parser.add_argument("--digits", type=int, default=4,
                        help="significant digits of the printed weights (default 4)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    try:
        _check_method(args.method, args.beta)  # before reading what may be gigabytes of labels
        _check_digits(args.digits)
        counts = count_label_file(args.path, args.dataset, args.num_classes, args.form,
                                  args.ignore_label, args.layer)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnseenClassWarning)
            weights = class_balances(counts.counts, args.method, args.beta, args.layer)
        fragment = format_class_balances(weights, args.digits)
    except (InputError, ParamError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    notes = [str(w.message) for w in caught]
    beta = None if args.method == "inverse_frequency" else (
        DEFAULT_BETA if args.beta is None else args.beta)
    if args.json:
        print(json.dumps({
            "layer": counts.layer, "class_ids": counts.class_ids,
            "files": list(counts.files), "dataset": args.dataset, "form": counts.form,
            "form_reason": counts.form_reason, "num_classes": counts.num_classes,
            "num_classes_reason": counts.num_classes_reason, "ignore_label": args.ignore_label,
            "entries": counts.entries, "ignored": counts.ignored,
            "background": counts.background,
            "counts": [int(c) if c.is_integer() else c for c in counts.counts.tolist()],
            "method": args.method, "beta": beta, "weights": weights.tolist(),
            "param_str_fragment": fragment, "warnings": notes}, indent=2))
    else:
        print(_report(counts, weights, args, beta, fragment))
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    return 0


def _report(counts: LabelCounts, weights, args, beta, fragment) -> str:
    files = counts.files
    first = counts.first_class_id
    lines = [
        f"layer    {counts.layer} (--layer {args.layer}): class ids {first}..{counts.class_ids[-1]}"
        + (", 0 = background" if first else ", 0 is a class"),
        f"labels   {args.path}: {len(files)} HDF5 file(s), dataset {args.dataset!r}, "
        f"{counts.entries:,} label values",
        f"form     {counts.form} ({counts.form_reason})",
        f"classes  C = {counts.num_classes} ({counts.num_classes_reason})",
        f"ignored  {counts.ignored:,}" + (f" (ignore_label {args.ignore_label})"
                                          if args.ignore_label is not None else ""),
        f"method   {args.method}" + (f", beta = {beta:g}" if beta is not None else "")
        + ", weights normalised to mean 1", "",
        f"{'class':>5}  {'count':>14}  {'share':>7}  {'weight':>10}"]
    total = counts.counts.sum()
    if counts.background is not None:
        lines.append(f"{0:>5}  {counts.background:>14,}  {'':>7}  {'-':>10}  background "
                     "(--layer softmax counts 0 as a class)")
    for c, n, w in zip(counts.class_ids, counts.counts, weights):
        lines.append(f"{c:>5}  {n:>14,.10g}  {n / total:>7.2%}  {w:>10.{args.digits}g}")
    lines += ["", f"param_str fragment for {counts.layer} ({args.digits} significant digits):",
              fragment]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
