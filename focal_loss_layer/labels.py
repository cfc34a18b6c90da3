"""Reading bottom[1]: which of the two label forms it is, whether its values are allowed, and the
per-logit targets and ignore mask it stands for.

Form (a) "targets": the same shape as the logits (N, C, *spatial); per-class targets in [0, 1]
    (binary multi-label, one-hot or soft), or ignore_label to skip that logit.
Form (b) "indices": shape (N, *spatial) or (N, 1, *spatial); integers 0..C, 0 = background
    (negative for every class), c = positive for class c (channel c−1) and negative for the
    others, or ignore_label to skip the whole position.
A label blob with exactly the logits' shape is always form (a). With one class (C = 1) that
    shape is also form (b)'s (N, 1, *spatial), and the rule still holds: such labels are
    per-class targets, which is no loss, since index 1 (positive) and 0 (background) are the
    targets 1 and 0; only an ignore_label must then lie outside [0, 1], as for any targets.
Form "classes" (SoftmaxFocalLossLayer, Caffe's SoftmaxWithLoss convention): shape (N, *spatial)
    or (N, 1, *spatial); one integer 0..C−1 per position, or ignore_label to skip the position.

Anchors (num_anchors = A > 1, Detectron's RetinaNet layout): logits (N, A·C, *spatial), channel
a·C + c for anchor a and class c; form (a) as above, form (b) of shape (N, A, *spatial). Both
are read as A·N samples of C classes (anchor_view), a reshape of the same memory.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .errors import InputError, ParamError

TARGETS = "targets"
INDICES = "indices"
CLASSES = "classes"


def label_form(logits_shape: Tuple[int, ...], labels_shape: Tuple[int, ...],
               num_anchors: int = 1) -> str:
    """TARGETS or INDICES for these shapes; InputError if the labels fit neither form.
    With A = num_anchors > 1 the logits are (N, A·C, *spatial) and class indices (N, A, *spatial)."""
    logits_shape, labels_shape = tuple(logits_shape), tuple(labels_shape)
    if len(logits_shape) < 2:
        raise InputError(f"bottom[0] (logits) has shape {logits_shape}; expected (N, C) or "
                         "(N, C, *spatial) with the class axis at 1")
    n, channels, spatial = logits_shape[0], logits_shape[1], logits_shape[2:]
    if channels % num_anchors:
        raise InputError(
            f"bottom[0] (logits) has {channels} channels (shape {logits_shape}), which "
            f"num_anchors = {num_anchors} does not divide: with A anchors per position the logits "
            "are (N, A*C, *spatial), channel a*C + c for anchor a and class c")
    if labels_shape == logits_shape:
        return TARGETS
    index_shapes = ((n, num_anchors) + spatial,) if num_anchors > 1 else (
        (n,) + spatial, (n, 1) + spatial)
    if labels_shape in index_shapes:
        return INDICES
    c = channels // num_anchors
    anchors = f" with num_anchors = {num_anchors}" if num_anchors > 1 else ""
    raise InputError(
        f"bottom[1] (labels) has shape {labels_shape}, which fits neither label form for logits "
        f"of shape {logits_shape}{anchors}: per-class targets need shape {logits_shape}; class "
        f"indices need shape {' or '.join(str(s) for s in index_shapes)} (values 0..{c}, "
        "0 = background)")


def check_class_label_shape(logits_shape: Tuple[int, ...], labels_shape: Tuple[int, ...]) -> None:
    """InputError unless labels_shape is (N, *spatial) or (N, 1, *spatial) for logits
    (N, C, *spatial): form CLASSES, one class index per position."""
    logits_shape, labels_shape = tuple(logits_shape), tuple(labels_shape)
    if len(logits_shape) < 2:
        raise InputError(f"bottom[0] (logits) has shape {logits_shape}; expected (N, C) or "
                         "(N, C, *spatial) with the class axis at 1")
    n, spatial = logits_shape[0], logits_shape[2:]
    shapes = ((n,) + spatial, (n, 1) + spatial)
    if labels_shape not in shapes:
        raise InputError(
            f"bottom[1] (labels) has shape {labels_shape}, which does not fit logits of shape "
            f"{logits_shape}: class labels need shape {' or '.join(str(s) for s in shapes)}, one "
            f"class index 0..{logits_shape[1] - 1} per position (as SoftmaxWithLoss)")


def check_label_form(logits_shape: Tuple[int, ...], labels_shape: Tuple[int, ...],
                     ignore_label: Optional[int], num_anchors: int = 1) -> str:
    """label_form, and ParamError if ignore_label cannot be told apart from a target of that form:
    with per-class targets an ignore_label of 0 or 1 would skip every negative or every positive."""
    form = label_form(logits_shape, labels_shape, num_anchors)
    if form == TARGETS and ignore_label is not None and 0 <= ignore_label <= 1:
        raise ParamError(
            f"ignore_label = {ignore_label} is not allowed with per-class targets (bottom[1] has "
            f"the logits' shape {tuple(logits_shape)}"
            f"{'; ' + ONE_CLASS_RULE if _one_class(logits_shape, num_anchors) else ''}): "
            f"targets take values in [0, 1], so every target equal to {ignore_label} would be "
            "skipped. Use a value outside [0, 1] (e.g. -1 or 255)")
    return form


# Why labels of the logits' shape are targets when C = 1, where the index shape is the same.
ONE_CLASS_RULE = ("with one class the logits' shape is also the class-index shape; labels of "
                  "that shape are read as per-class targets, where index 1 and 0 are the "
                  "targets 1 and 0")


def _one_class(logits_shape: Tuple[int, ...], num_anchors: int = 1) -> bool:
    return len(logits_shape) >= 2 and logits_shape[1] == num_anchors


def anchor_view(logits_shape: Tuple[int, ...], labels_shape: Tuple[int, ...],
                num_anchors: int) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """The shapes under which A anchors become A times as many samples, with the same memory
    order (a reshape, never a copy): logits (N, A·C, *S) -> (N·A, C, *S); per-class targets
    alike; class indices (N, A, *S) -> (N·A, *S). Unchanged for A = 1."""
    logits_shape, labels_shape = tuple(logits_shape), tuple(labels_shape)
    if num_anchors == 1:
        return logits_shape, labels_shape
    n, channels, spatial = logits_shape[0], logits_shape[1], logits_shape[2:]
    view = (n * num_anchors, channels // num_anchors) + spatial
    return view, (view if labels_shape == logits_shape else (n * num_anchors,) + spatial)


@dataclass
class Targets:
    """targets: (N, C, *spatial) float in [0, 1] (unsmoothed); valid: bool, same shape, or None
    when nothing is ignored."""

    targets: np.ndarray
    valid: Optional[np.ndarray]


def check_labels(labels: np.ndarray, form: str, num_classes: Optional[int],
                 ignore_label: Optional[int], where: str = "bottom[1] (labels)") -> None:
    """Raise InputError, naming `where`, the first offending value and its index, unless every
    label is allowed for its form (or equals ignore_label). num_classes None: class indices
    have no upper bound (C not known yet)."""
    labels = np.asarray(labels)
    ignored = (labels == ignore_label) if ignore_label is not None else False
    if form == TARGETS:
        bad = ~((labels >= 0) & (labels <= 1)) & ~ignored
        allowed = "per-class targets must lie in [0, 1]" + (
            f" ({ONE_CLASS_RULE})" if num_classes == 1 else "")
    else:
        top = np.inf if num_classes is None else num_classes - (form == CLASSES)
        whole = np.isfinite(labels) & (labels == np.round(labels))
        bad = ~((labels >= 0) & (labels <= top) & whole) & ~ignored
        allowed = ((f"class labels must be integers 0..{top}" if form == CLASSES else
                    "class-index labels must be integers "
                    + (">= 0" if num_classes is None else f"0..{num_classes}"))
                   + (" (one class per position, as SoftmaxWithLoss)" if form == CLASSES
                      else " (0 = background)"))
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        ignore_text = (f" or ignore_label={ignore_label}" if ignore_label is not None
                       else " (no ignore_label is set)")
        raise InputError(f"{where} holds {np.count_nonzero(bad)} value(s) not allowed; the first "
                         f"is {labels[index].item()!r} at index {index}: {allowed}{ignore_text}")


def read_labels(labels: np.ndarray, logits_shape: Tuple[int, ...],
                ignore_label: Optional[int] = None, num_anchors: int = 1) -> Targets:
    """Checked per-logit targets and ignore mask for labels in either form, in the anchor view's
    shape (anchor_view: (N·A, C, *spatial); the logits' own shape for A = 1)."""
    form = check_label_form(logits_shape, labels.shape, ignore_label, num_anchors)
    check_labels(labels, form, logits_shape[1] // num_anchors, ignore_label)
    logits_shape, labels_shape = anchor_view(logits_shape, labels.shape, num_anchors)
    labels = labels.reshape(labels_shape)
    num_classes = logits_shape[1]
    if form == TARGETS:
        valid = None if ignore_label is None else labels != ignore_label
        targets = np.where(valid, labels, 0.0) if valid is not None else labels
        return Targets(np.asarray(targets, dtype=np.float64), _all_or_none(valid))
    indices = labels.reshape((logits_shape[0], 1) + tuple(logits_shape[2:]))
    class_ids = np.arange(1, num_classes + 1).reshape((1, -1) + (1,) * (len(logits_shape) - 2))
    targets = (indices == class_ids).astype(np.float64)
    valid = None
    if ignore_label is not None:
        valid = np.broadcast_to(indices != ignore_label, logits_shape)
    return Targets(targets, _all_or_none(valid))


def _all_or_none(valid: Optional[np.ndarray]) -> Optional[np.ndarray]:
    return None if valid is None or valid.all() else np.ascontiguousarray(valid)
