"""Sigmoid focal loss and its gradient in numpy: the formulas every other path is checked against.

Per logit x with p = σ(x), focusing parameter γ ≥ 0 (Lin et al. 2017, eq. 5, per class):

    ℓ⁺(x) = −(1−p)^γ · log p          dℓ⁺/dx = (1−p)^γ · (γ·p·log p − (1−p))
    ℓ⁻(x) = −p^γ · log(1−p)           dℓ⁻/dx = p^γ · (p − γ·(1−p)·log(1−p))

evaluated stably from softplus: log p = −softplus(−x), log(1−p) = −softplus(x),
(1−p)^γ = exp(−γ·softplus(x)), p^γ = exp(−γ·softplus(−x)). No (1−p)^(γ−1) appears, so both
gradients stay finite for every γ ≥ 0 and every finite x, saturated logits and 0 < γ < 1 included.

For a target t ∈ [0, 1] (soft targets interpolate the two terms; hard targets give the paper's
loss exactly), class weight w_c and α-balance a⁺ = α, a⁻ = 1 − α (both 1 when α is off):

    ℓ = w_c · [a⁺·t·ℓ⁺ + a⁻·(1−t)·ℓ⁻]            loss = Σ ℓ / normalizer

γ = 0 with no weights is sigmoid cross-entropy, with gradient p − t.
"""
import math
from typing import Optional, Tuple

import numpy as np

from .deprecation import deprecated_alias, keyword_renamed
from .params import NORMALIZATIONS


def focal_terms(logits: np.ndarray, focusing_parameter: float):
    """Elementwise (ℓ⁺, ℓ⁻, dℓ⁺/dx, dℓ⁻/dx) for logits of any shape, in the logits' dtype."""
    gamma = focusing_parameter
    # softplus(±x) share log1p(exp(−|x|)); each keeps full relative precision on its own.
    shared = np.log1p(np.exp(-np.abs(logits)))
    minus_log_q = np.maximum(logits, 0) + shared    # −log(1−p) = softplus(x)
    minus_log_p = np.maximum(-logits, 0) + shared   # −log p = softplus(−x)
    p = np.exp(-minus_log_p)
    q = np.exp(-minus_log_q)              # 1 − p, without cancellation
    q_gamma = np.exp(-gamma * minus_log_q)
    p_gamma = np.exp(-gamma * minus_log_p)
    pos_loss = q_gamma * minus_log_p
    neg_loss = p_gamma * minus_log_q
    pos_grad = -q_gamma * (gamma * p * minus_log_p + q)
    neg_grad = p_gamma * (p + gamma * q * minus_log_q)
    return pos_loss, neg_loss, pos_grad, neg_grad


def term_coefficients(targets: np.ndarray, *, alpha: Optional[float] = None,
                      class_balances: Optional[np.ndarray] = None,
                      valid: Optional[np.ndarray] = None, label_smoothing: float = 0.0,
                      class_axis: int = 1, **deprecated) -> Tuple[np.ndarray, np.ndarray]:
    """Coefficients (c⁺, c⁻) of ℓ⁺ and ℓ⁻ per logit: c⁺ = w_c·a⁺·t', c⁻ = w_c·a⁻·(1−t'),
    zero where valid is False, with t' = t·(1−ε) + ε/2 the smoothed target.

    targets: (N, C, *spatial) in [0, 1]; valid: bool, same shape, or None (all valid);
    class_balances: the weights w_c, (C,), or None (all 1).
    """
    class_balances = keyword_renamed(class_balances, deprecated, "class_weights", "class_balances",
                                     "focal_loss_layer.core.term_coefficients")
    smoothed = targets * (1.0 - label_smoothing) + label_smoothing / 2 if label_smoothing else targets
    pos = smoothed.astype(np.float64, copy=True)
    neg = 1.0 - pos
    if alpha is not None:
        pos *= alpha
        neg *= 1.0 - alpha
    if class_balances is not None:
        shape = [1] * targets.ndim
        shape[class_axis] = -1
        weights = np.asarray(class_balances, dtype=np.float64).reshape(shape)
        pos *= weights
        neg *= weights
    if valid is not None:
        pos[~valid] = 0.0
        neg[~valid] = 0.0
    return pos, neg


def normalizer(normalization: str, targets: np.ndarray, valid: Optional[np.ndarray] = None) -> float:
    """The divisor of the summed loss, at least 1 (see normalizer_from_counts), for targets
    (N, C, *spatial) and the mask of non-ignored logits (None: all)."""
    valid_count = targets.size if valid is None else np.count_nonzero(valid)
    positives = (targets.sum(dtype=np.float64) if valid is None
                 else targets.sum(where=valid, dtype=np.float64))
    return normalizer_from_counts(normalization, targets.shape, valid_count, positives)


def normalizer_from_counts(normalization: str, logits_shape, valid_count: float,
                           positives: float) -> float:
    """The divisor of the summed loss, at least 1.

    batch_size: N (logits_shape[0]); full: number of logits; valid: valid_count, the number of
    non-ignored logits; positives: Σ of (unsmoothed) targets over non-ignored logits — the number
    of positive targets for hard labels; none: 1. (The softmax loss, one term per position,
    passes the positions' shape (N, *spatial) and its valid positions: full then counts
    positions, as Caffe's SoftmaxWithLoss does.)
    """
    counts = {"batch_size": logits_shape[0], "full": math.prod(logits_shape),
              "valid": valid_count, "positives": positives, "none": 1}
    if normalization not in counts:
        raise ValueError(f"normalization {normalization!r} is not one of {NORMALIZATIONS}")
    return max(1.0, float(counts[normalization]))


def sigmoid_focal_loss_and_gradient(
        logits: np.ndarray, targets: np.ndarray, *, focusing_parameter: float = 2.0,
        alpha: Optional[float] = None, class_balances: Optional[np.ndarray] = None,
        ignore_label: Optional[float] = None, valid: Optional[np.ndarray] = None,
        label_smoothing: float = 0.0, normalization: str = "batch_size") -> Tuple[float, np.ndarray]:
    """(loss, ∂loss/∂logits): the focal loss and its gradient with respect to the logits.

    logits, targets: (N, C, *spatial) (class axis 1); targets in [0, 1], or ignore_label where a
    logit is skipped (FocalLossLayer's per-class-target form). The keywords are param_str's keys,
    with class_balances as the weights (C,) (FocalLossLayer resolves a dict to these). valid: an
    optional bool mask of the logits to count, same shape, as labels.read_labels returns it for
    class-index labels. Returns (loss: float, grad: array like logits), computed in the logits'
    dtype; pass float64 for reference values.
    """
    if ignore_label is not None:
        kept = targets != ignore_label
        valid = kept if valid is None else valid & kept
        targets = np.where(kept, targets, 0.0)
    pos_loss, neg_loss, pos_grad, neg_grad = focal_terms(logits, focusing_parameter)
    pos_coeff, neg_coeff = term_coefficients(
        targets, alpha=alpha, class_balances=class_balances, valid=valid,
        label_smoothing=label_smoothing)
    scale = 1.0 / normalizer(normalization, targets, valid)
    loss = float(np.sum(pos_coeff * pos_loss + neg_coeff * neg_loss)) * scale
    grad = ((pos_coeff * pos_grad + neg_coeff * neg_grad) * scale).astype(logits.dtype, copy=False)
    return loss, grad


# The name before 0.2: "sigmoid_focal_loss" did not say that it returns the gradient too, and its
# class_weights= is param_str's class_balances.
sigmoid_focal_loss = deprecated_alias(sigmoid_focal_loss_and_gradient, "focal_loss_layer.core",
                                      "sigmoid_focal_loss", keywords={"class_weights": "class_balances"})
