"""Softmax focal loss and its gradient in numpy: the reference every other softmax path is checked
against (pass float64 for reference values).

One term per position: logits x_0..x_{C−1} (class axis 1), label y ∈ 0..C−1, p = softmax(x)_y,
focusing parameter γ ≥ 0:

    ℓ = −(1−p)^γ · log p                           (γ = 0: softmax cross-entropy)
    dℓ/dx_y = −(1−p)^γ · (1 − p + γ·p·(−log p))
    dℓ/dx_j =  (1−p)^γ · (p_j + γ·p·(−log p)·r_j)   for j ≠ y,   r_j = p_j / (1 − p)

Derivation: dℓ/dp = γ(1−p)^(γ−1)·log p − (1−p)^γ/p and dp/dx_j = p·(δ_jy − p_j), so
dℓ/dx_j = γ(1−p)^(γ−1)·p·log p·(δ_jy − p_j) − (1−p)^γ·(δ_jy − p_j). For j = y, δ_jy − p_j = 1 − p
cancels the power's −1; for j ≠ y it leaves p_j/(1 − p) = r_j, the share of class j in the mass
of the classes other than y: r_j ∈ [0, 1], Σ_{j≠y} r_j = 1. No (1−p)^(γ−1) and no division by
1 − p remain, so the gradient is finite for every γ ≥ 0 (0 < γ < 1 included) and any logits;
|dℓ/dx_y| ≤ 1 + γ/e and Σ_j dℓ/dx_j = 0. At γ = 0 it is p_j − δ_jy, SoftmaxWithLoss's gradient.

Evaluated from m = max_k x_k and s_k = e^{x_k − m} ∈ (0, 1], each a quantity that keeps its
relative precision:

    Z − 1 = Σ_{k: x_k<m} s_k + (#maxima − 1)           (the maxima give s_k = 1 exactly)
    −log p = log1p(Z − 1) − (x_y − m)                  (both terms ≥ 0: no cancellation)
    R = Σ_{k≠y} s_k = Z − 1 if x_y = m, else (Z − 1) + (1 − s_y)
    1 − p = R / Z,   p = s_y / Z,   r_j = s_j / R,   (1−p)^γ = exp(−γ·log1p(s_y / R))
    dℓ/dx_j = s_j · (1−p)^γ · (1/Z + γ·p·(−log p)/R)     for j ≠ y

(−log p)/R ≤ 1 where p → 1 (then −log p = log1p(R)), so nothing overflows; where R = 0 every
s_j (j ≠ y) is 0 and the ratio is taken as 0.

Weights per position: w_y from class_balances and a_y = α for y ≥ 1, 1 − α for y = 0 when alpha is
set (Detectron's SoftmaxFocalLoss), else 1. loss = Σ w_y·a_y·ℓ over non-ignored positions /
normalizer: valid (non-ignored positions, SoftmaxWithLoss's default), full (all positions),
batch_size (N), none (1); every divisor at least 1.
"""
from typing import Optional, Tuple

import numpy as np

from .core import normalizer_from_counts
from .deprecation import deprecated_alias, keyword_renamed
from .labels import CLASSES, check_class_label_shape, check_labels
from .params import SOFTMAX_NORMALIZATIONS


def softmax_focal_terms(logits: np.ndarray, classes: np.ndarray,
                        focusing_parameter: float) -> Tuple[np.ndarray, np.ndarray]:
    """(ℓ, dℓ/dx) per position for logits (N, C, *spatial) and integer classes (N, *spatial) in
    0..C−1: ℓ of shape (N, *spatial), dℓ/dx of the logits' shape, in the logits' dtype."""
    gamma = focusing_parameter
    x = np.asarray(logits)
    y = np.asarray(classes, dtype=np.intp)[:, None]
    shifted = x - x.max(axis=1, keepdims=True)                  # x_k − m ≤ 0
    s = np.exp(shifted)
    at_max = shifted == 0
    z_minus_1 = (np.where(at_max, 0, s).sum(axis=1) + (at_max.sum(axis=1) - 1)).astype(x.dtype)
    shifted_y = np.take_along_axis(shifted, y, axis=1)[:, 0]
    minus_log_p = np.log1p(z_minus_1) - shifted_y
    z = 1 + z_minus_1
    rest = np.where(shifted_y == 0, z_minus_1, z_minus_1 + (1 - np.exp(shifted_y)))
    p = np.exp(-minus_log_p)
    q = rest / z                                                # 1 − p, without cancellation
    # (1−p)^γ = exp(−γ·log1p(s_y/R)): q ** γ would round q to 1 where p < 1e-16 and miss the
    # factor exp(−γ·p) that a large γ makes matter; 0 ** 0 = 1 (cross-entropy at γ = 0)
    if gamma == 0:
        q_gamma = np.ones_like(q)
    else:
        with np.errstate(divide="ignore", over="ignore"):      # R = 0 or tiny: (1−p)^γ = 0
            q_gamma = np.exp(-gamma * np.log1p(np.exp(shifted_y) / rest))
    ratio = np.divide(minus_log_p, rest, out=np.zeros_like(rest), where=rest > 0)
    others = q_gamma * (1 / z + gamma * p * ratio)
    grad = s * others[:, None]
    np.put_along_axis(grad, y, (-q_gamma * (q + gamma * p * minus_log_p))[:, None], axis=1)
    return q_gamma * minus_log_p, grad


def position_weights(classes: np.ndarray, *, alpha: Optional[float] = None,
                     class_balances: Optional[np.ndarray] = None,
                     valid: Optional[np.ndarray] = None, **deprecated) -> np.ndarray:
    """w_y·a_y per position, float64, zero where valid is False; classes: integers 0..C−1;
    class_balances: the weights w_c, (C,), or None (all 1)."""
    class_balances = keyword_renamed(class_balances, deprecated, "class_weights", "class_balances",
                                     "focal_loss_layer.softmax_core.position_weights")
    classes = np.asarray(classes, dtype=np.intp)
    weights = (np.ones(classes.shape) if class_balances is None
               else np.asarray(class_balances, dtype=np.float64)[classes])
    if alpha is not None:
        weights = weights * np.where(classes == 0, 1.0 - alpha, alpha)
    if valid is not None:
        weights = np.where(valid, weights, 0.0)
    return weights


def read_class_labels(labels: np.ndarray, logits_shape, ignore_label: Optional[int] = None
                      ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Checked labels -> (classes (N, *spatial) intp with ignored positions as 0, valid mask or
    None when nothing is ignored). InputError on a shape or value not allowed."""
    check_class_label_shape(logits_shape, np.shape(labels))
    check_labels(labels, CLASSES, logits_shape[1], ignore_label)
    labels = np.asarray(labels).reshape((logits_shape[0],) + tuple(logits_shape[2:]))
    valid = None if ignore_label is None else labels != ignore_label
    if valid is not None and valid.all():
        valid = None
    classes = labels if valid is None else np.where(valid, labels, 0)
    return classes.astype(np.intp), valid


def softmax_focal_loss_and_gradient(
        logits: np.ndarray, labels: np.ndarray, *, focusing_parameter: float = 2.0,
        alpha: Optional[float] = None, class_balances: Optional[np.ndarray] = None,
        ignore_label: Optional[int] = None, normalization: str = "valid") -> Tuple[float, np.ndarray]:
    """(loss, ∂loss/∂logits): the softmax focal loss and its gradient with respect to the logits.

    logits: (N, C, *spatial), class axis 1; labels: (N, *spatial) or (N, 1, *spatial), integers
    0..C−1 or ignore_label. The keywords are param_str's keys, with class_balances as the weights
    (C,) or None. Returns (loss: float, grad: array like logits). Computed in the logits' dtype;
    pass float64 for reference values."""
    if normalization not in SOFTMAX_NORMALIZATIONS:
        raise ValueError(f"normalization {normalization!r} is not one of {SOFTMAX_NORMALIZATIONS}")
    classes, valid = read_class_labels(labels, logits.shape, ignore_label)
    loss, grad = softmax_focal_terms(logits, classes, focusing_parameter)
    weights = position_weights(classes, alpha=alpha, class_balances=class_balances, valid=valid)
    valid_count = classes.size if valid is None else np.count_nonzero(valid)
    scale = 1.0 / normalizer_from_counts(normalization, classes.shape, valid_count, 0.0)
    total = float(np.sum(weights * loss)) * scale
    grad = (grad * (weights * scale)[:, None]).astype(logits.dtype, copy=False)
    return total, grad


# The name before 0.2: it read as the layer's name (netspec's builder had it) and did not say that
# it returns the gradient too; its class_weights= is param_str's class_balances.
softmax_focal_loss = deprecated_alias(softmax_focal_loss_and_gradient, "focal_loss_layer.softmax_core",
                                      "softmax_focal_loss", keywords={"class_weights": "class_balances"})
