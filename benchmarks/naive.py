"""The original blog layer's form, for context: a Python double loop over samples and logits,
one element at a time (math.exp/log per element). Timed on a slice it can finish; its cost per
logit is constant, so the time for a whole blob is that cost times the number of logits."""
import math
import time

import numpy as np


def naive_forward_backward(logits, targets, gamma=2.0, alpha=0.25):
    """(loss, grad) for logits, targets of shape (N, M): per element p = σ(x),
    ℓ = −α_t·(1−p_t)^γ·log p_t and its derivative, by a loop over n and m."""
    n_rows, n_cols = logits.shape
    grad = np.empty_like(logits)
    total = 0.0
    for n in range(n_rows):
        for m in range(n_cols):
            x = float(logits[n, m])
            t = float(targets[n, m])
            p = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
            p_t, a_t = (p, alpha) if t == 1.0 else (1.0 - p, 1.0 - alpha)
            p_t = min(max(p_t, 1e-38), 1.0)
            total += -a_t * (1.0 - p_t) ** gamma * math.log(p_t)
            d_pt = a_t * (gamma * (1.0 - p_t) ** (gamma - 1) * math.log(p_t)
                          - (1.0 - p_t) ** gamma / p_t)        # dℓ/dp_t
            grad[n, m] = d_pt * p * (1.0 - p) * (1.0 if t == 1.0 else -1.0)
    return total / n_rows, grad / n_rows


def seconds_per_logit(size, repeats=3, seed=0):
    """Median seconds per logit of naive_forward_backward on a (2, size/2) blob."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(2, size // 2)).astype(np.float32)
    targets = (rng.random((2, size // 2)) < 0.01).astype(np.float32)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        naive_forward_backward(logits, targets)
        samples.append(time.perf_counter() - start)
    return float(np.median(samples)) / logits.size
