"""How often backward's input checksum misses a structured in-place change: a numpy replay of
kernels.checksum_pairs over one run of logits (tests/test_checksum_replay.py checks that it is
the kernel's, bit for bit), before and after a change of every logit, over many random blobs.
Prints per change the blobs whose checksum did not change although their bits did. The passes
add these runs' checksums (FocalLossLayer: chunks of up to kernels.CHECKSUM_CHUNK logits;
SoftmaxFocalLossLayer: each class's positions of a segment, their pair terms added before the
fold): with 12 or 512 logits a blob is one run.

    python -m benchmarks.checksum_misses [--trials 100000]

Logits N(0, 1) ("normal") or those rounded to multiples of 0.5 ("round", the worst case: equal
values make equal hash terms, which can swap places), labels 0/1 with 30 % ones.
"""
import argparse

import numpy as np

_LOW = np.uint64(0xFFFFFFFF)
_MIX_OFFSET = np.uint64(0x9E3779B9)
_PAIR_OFFSET = np.uint64(0x9E3779B97F4A7C15)
CHANGES = ("negate", "×2", "×0.5", "ReLU", "abs", "round", "swap two signs")


def _mix(h):
    """kernels._mix of uint32 values held in uint64."""
    h = ((h ^ (h >> np.uint64(16))) + _MIX_OFFSET) & _LOW
    return (h * h) & _LOW


def _words(a):
    return a.view(np.uint32).astype(np.uint64)


def checksum(x, labels):
    """kernels.checksum_pairs(x_row, 0, labels_row, 0, n) of each row of float32 (trials, n)."""
    n = x.shape[1]
    even = n - n % 2
    with np.errstate(over="ignore"):
        g = (np.ascontiguousarray(x[:, :even]).view(np.uint64)
             + np.ascontiguousarray(labels[:, :even]).view(np.uint64) + _PAIR_OFFSET)
        total = ((g & _LOW) * (g >> np.uint64(32))).sum(axis=1)
        folded = ((total & _LOW) + (total >> np.uint64(32)) * _MIX_OFFSET) & _LOW
        if n % 2:
            folded = (folded + _mix((_words(x[:, -1]) + _words(labels[:, -1])) & _LOW)) & _LOW
    return folded.astype(np.uint32)


def change(x, kind):
    """x after one in-place layer's change of every logit (or, swap, of two)."""
    y = x.copy()
    if kind == "negate":
        y = -y
    elif kind == "×2":
        y = y * 2
    elif kind == "×0.5":
        y = y * 0.5
    elif kind == "ReLU":
        y = np.maximum(y, 0)
    elif kind == "abs":
        y = np.abs(y)
    elif kind == "round":
        y = np.round(y)
    else:       # the first positive and the first negative logit swap their signs
        rows = np.arange(len(y))
        positive, negative = np.argmax(y > 0, axis=1), np.argmax(y < 0, axis=1)
        both = (y[rows, positive] > 0) & (y[rows, negative] < 0)
        y[rows[both], positive[both]] *= -1
        y[rows[both], negative[both]] *= -1
    return y.astype(np.float32)


def lines(trials=100_000, sizes=(12, 512), seed=0):
    rng = np.random.default_rng(seed)
    out = [f"checksum misses per {trials} blobs whose bits changed (kernels.checksum_pairs)",
           f"| {'logits':<12} | " + " | ".join(f"{kind:>14}" for kind in CHANGES) + " |"]
    for n in sizes:
        for data in ("normal", "round"):
            x = rng.normal(size=(trials, n)).astype(np.float32)
            if data == "round":
                x = (np.round(x * 2) / 2).astype(np.float32)
            labels = (rng.random((trials, n)) < 0.3).astype(np.float32)
            before = checksum(x, labels)
            cells = []
            for kind in CHANGES:
                y = change(x, kind)
                changed = np.any(y.view(np.uint32) != x.view(np.uint32), axis=1)
                missed = np.count_nonzero((checksum(y, labels) == before) & changed)
                cells.append(f"{missed:>6} / {np.count_nonzero(changed):<6}")
            out.append(f"| {data + ' ' + str(n):<12} | " + " | ".join(cells) + " |")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    print("\n".join(lines(parser.parse_args().trials)))
