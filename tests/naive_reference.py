"""The original blog layer's per-element double loop, made numerically stable: an independent
reference written with Python floats, pow() and 1 − p, to check the vectorised core against."""
import math

import numpy as np


def _sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _softplus(z):
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def naive_focal_loss(logits, labels, *, gamma=2.0, alpha=None, class_balances=None,
                     normalization="batch_size", ignore_label=None, label_smoothing=0.0):
    """Loss and gradient by looping over every logit. labels: per-class targets (logits' shape)
    or class indices ((N, *spatial) or (N, 1, *spatial))."""
    x = np.asarray(logits, dtype=np.float64)
    n_batch, n_classes = x.shape[:2]
    spatial = x.shape[2:]
    per_class = labels.shape == x.shape
    index_labels = None if per_class else np.asarray(labels).reshape((n_batch,) + spatial)
    weights = [1.0] * n_classes if class_balances is None else list(class_balances)
    a_pos, a_neg = (1.0, 1.0) if alpha is None else (alpha, 1.0 - alpha)
    total, valid_count, positive_count = 0.0, 0, 0.0
    grad = np.zeros_like(x)
    for n in range(n_batch):
        for c in range(n_classes):
            for s in np.ndindex(*spatial):
                label = float(labels[(n, c) + s] if per_class else index_labels[(n,) + s])
                if ignore_label is not None and label == ignore_label:
                    continue
                t = label if per_class else (1.0 if label == c + 1 else 0.0)
                valid_count += 1
                positive_count += t
                t = t * (1 - label_smoothing) + label_smoothing / 2
                xi = float(x[(n, c) + s])
                p, q = _sigmoid(xi), _sigmoid(-xi)
                log_p, log_q = -_softplus(-xi), -_softplus(xi)
                loss_pos = -(q ** gamma) * log_p
                loss_neg = -(p ** gamma) * log_q
                grad_pos = q ** gamma * (gamma * p * log_p - q)
                grad_neg = p ** gamma * (p - gamma * q * log_q)
                w = weights[c]
                total += w * (a_pos * t * loss_pos + a_neg * (1 - t) * loss_neg)
                grad[(n, c) + s] = w * (a_pos * t * grad_pos + a_neg * (1 - t) * grad_neg)
    divisor = {"batch_size": n_batch, "full": x.size, "valid": valid_count,
               "positives": positive_count, "none": 1}[normalization]
    divisor = max(1.0, divisor)
    return total / divisor, grad / divisor


def naive_softmax_focal_loss(logits, labels, *, focusing_parameter=2.0, alpha=None,
                             class_balances=None, ignore_label=None, normalization="valid"):
    """Softmax focal loss and gradient by looping over positions with Python floats, the textbook
    way: p = softmax, ℓ = −(1−p_y)^γ·log p_y and the chain rule through dℓ/dp_y, which holds
    (1−p_y)^(γ−1): an independent check of the closed form, for moderate logits only (it needs
    1 − p_y > 0). labels: (N, *spatial) or (N, 1, *spatial)."""
    gamma = focusing_parameter
    x = np.asarray(logits, dtype=np.float64)
    n_batch, n_classes = x.shape[:2]
    spatial = x.shape[2:]
    labels = np.asarray(labels).reshape((n_batch,) + spatial)
    weights = [1.0] * n_classes if class_balances is None else list(class_balances)
    total, valid_count = 0.0, 0
    grad = np.zeros_like(x)
    for n in range(n_batch):
        for s in np.ndindex(*spatial):
            label = float(labels[(n,) + s])
            if ignore_label is not None and label == ignore_label:
                continue
            y = int(label)
            valid_count += 1
            row = [float(x[(n, c) + s]) for c in range(n_classes)]
            top = max(row)
            exps = [math.exp(v - top) for v in row]
            probs = [e / sum(exps) for e in exps]
            p = probs[y]
            weight = weights[y] * (1.0 if alpha is None else (alpha if y > 0 else 1.0 - alpha))
            total += -weight * (1 - p) ** gamma * math.log(p)
            d_loss_d_p = gamma * (1 - p) ** (gamma - 1) * math.log(p) - (1 - p) ** gamma / p
            for c in range(n_classes):
                grad[(n, c) + s] = weight * d_loss_d_p * p * ((c == y) - probs[c])
    positions = n_batch * math.prod(spatial)
    divisor = {"valid": valid_count, "full": positions, "batch_size": n_batch, "none": 1}
    divisor = max(1.0, divisor[normalization])
    return total / divisor, grad / divisor
