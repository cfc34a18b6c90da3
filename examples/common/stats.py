"""Statistics over seeds: the mean with its 95 % t-interval, and the paired per-seed difference.

With n seeds, the interval is mean ± t_{0.975, n-1} · sd / sqrt(n) (sd with n - 1 in the
denominator): Student's t, the right interval for a handful of seeds whose spread is unknown.
A paired difference a - b is the interval of the per-seed differences a_i - b_i: both arms of a
seed share the initial weights and the batches, so pairing removes the seed's own effect.
"""
from typing import Dict, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Dict:
    """{"n", "mean", "sd", "low", "high", "values"}: the mean and its t-interval. With one value
    the interval is undefined (low = high = None)."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    mean = float(values.mean())
    out = {"n": n, "mean": mean, "sd": None, "low": None, "high": None,
           "values": values.tolist()}
    if n > 1:
        sd = float(values.std(ddof=1))
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / np.sqrt(n)
        out.update(sd=sd, low=mean - half, high=mean + half)
    return out


def paired_difference(a: Sequence[float], b: Sequence[float],
                      confidence: float = CONFIDENCE) -> Dict:
    """The t-interval of the per-seed differences a_i - b_i (a and b in the same seed order)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired_difference needs one value per seed on both sides, got "
                         f"{len(a)} and {len(b)}")
    return t_interval(a - b, confidence)
