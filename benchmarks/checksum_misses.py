"""How often backward's input checksum misses a structured in-place change: numpy replays of the
passes' checksums (tests/test_checksum_replay.py checks that they are the kernels', bit for
bit), before and after a change of every logit, over many random blobs. Prints per change the
blobs whose checksum did not change although their bits did.

FocalLossLayer: kernels.checksum_pairs over a run of logits (the pass adds those of its chunks
of up to kernels.CHECKSUM_CHUNK logits; a blob here is one run). SoftmaxFocalLossLayer with
spatial dims: the logits' part of softmax_kernels._segment's checksum for one sample of C
classes × P positions (softmax_checksum).

    python -m benchmarks.checksum_misses [--trials 100000]

Logits N(0, 1) ("normal") or those rounded to multiples of 0.5 ("round", the worst case: equal
values make equal hash terms, which can swap places), labels 0/1 with 30 % ones.
"""
import argparse
from functools import partial

import numpy as np

_LOW = np.uint64(0xFFFFFFFF)
_MIX_OFFSET = np.uint64(0x9E3779B9)
_PAIR_OFFSET = np.uint64(0x9E3779B97F4A7C15)
_STEP = 32      # softmax_kernels.MAX_STEP
CHANGES = ("negate", "×2", "×0.5", "ReLU", "abs", "round", "one sign", "swap two signs")


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
        folded = _fold(_pair_terms(np.ascontiguousarray(x[:, :even]).view(np.uint64)
                                   + np.ascontiguousarray(labels[:, :even]).view(np.uint64)))
        if n % 2:
            folded = (folded + _mix((_words(x[:, -1]) + _words(labels[:, -1])) & _LOW)) & _LOW
    return folded.astype(np.uint32)


def _pair_terms(pairs):
    """Σ over the last axis of (g mod 2^32)·(g div 2^32), g = pairs + _PAIR_OFFSET (uint64)."""
    g = pairs + _PAIR_OFFSET
    return ((g & _LOW) * (g >> np.uint64(32))).sum(axis=-1)


def _fold(total):
    """kernels.fold_pair_sum of uint64 sums (values below 2^32, held in uint64)."""
    return ((total & _LOW) + (total >> np.uint64(32)) * _MIX_OFFSET) & _LOW


def _rotate_left(words, bits):
    """uint64 words rotated left by bits (0 ≤ bits < 64)."""
    if not bits:
        return words
    return (words << np.uint64(bits)) | (words >> np.uint64(64 - bits))


def softmax_checksum(x, labels):
    """The softmax pass's checksum (softmax_kernels._segment's and softmax_pass's) of each blob
    of one sample, when it is one block (P ≤ softmax_kernels.block_positions(C)): logits
    float32 (trials, C, P), labels (trials, P). Each class's P positions padded with zero bits
    to whole steps of _STEP; per step (A, B, C, D: the pairs of its quarters as uint64 words;
    i: the index of its first logit in the blob, c·P + _STEP·s) the terms of
    A + rol(B, 1) + rol(C, 2) + rol(D, 3) + i, rol = rotation left by so many bits; all added
    modulo 2^64 and folded as checksum_pairs does; plus checksum_pairs of the labels."""
    trials, classes, positions = x.shape
    padded = -(-positions // _STEP) * _STEP
    bits = np.zeros((trials, classes, padded), dtype=np.float32)
    bits[:, :, :positions] = x
    with np.errstate(over="ignore"):
        quarters = bits.view(np.uint64).reshape(trials, classes * (padded // _STEP), 4,
                                                 _STEP // 8)
        steps = padded // _STEP
        first = (np.arange(classes)[:, None] * positions + _STEP * np.arange(steps)).reshape(-1)
        weighted = sum(_rotate_left(quarters[:, :, k], k) for k in range(4)) + first.astype(
            np.uint64)[None, :, None]
        folded = _fold(_pair_terms(weighted).sum(axis=1))
        folded = (folded + checksum(labels, np.zeros_like(labels))) & _LOW
    return folded.astype(np.uint32)


def change(x, kind, seed=0):
    """x after one in-place layer's change of every logit; or, "one sign", one logit negated;
    or, "swap two signs", a positive and a negative logit negated (per row of x, at positions
    drawn with seed)."""
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
    else:
        # Random positions: a hash may treat positions unequally (one that summed shifted words
        # missed sign flips at 24 of every 64).
        rng = np.random.default_rng(seed)
        shape, y = y.shape, y.reshape(len(y), -1)
        rows = np.arange(len(y))
        if kind == "one sign":
            y[rows, rng.integers(0, y.shape[1], len(y))] *= -1
        else:
            # a random positive and a random negative logit (random keys, largest of each sign)
            keys = rng.random(y.shape)
            positive = np.argmax(np.where(y > 0, keys, -1), axis=1)
            negative = np.argmax(np.where(y < 0, keys, -1), axis=1)
            both = (y[rows, positive] > 0) & (y[rows, negative] < 0)
            y[rows[both], positive[both]] *= -1
            y[rows[both], negative[both]] *= -1
        y = y.reshape(shape)
    return y.astype(np.float32)


# Blob shapes per trial: FocalLossLayer's run (n logits with per-class targets);
# SoftmaxFocalLossLayer's sample (C classes × P positions: all in whole steps, or with a rest).
SIGMOID_SHAPES, SOFTMAX_SHAPES = ((12,), (512,)), ((3, 32), (4, 128), (3, 21))


def lines(trials=100_000, seed=0):
    rng = np.random.default_rng(seed)
    header = f"| {'logits':<12} | " + " | ".join(f"{kind:>14}" for kind in CHANGES) + " |"
    out = []
    for title, shapes in (("FocalLossLayer, kernels.checksum_pairs", SIGMOID_SHAPES),
                          ("SoftmaxFocalLossLayer, one sample C × P", SOFTMAX_SHAPES)):
        out += [f"checksum misses per {trials} blobs whose bits changed ({title})", header]
        for shape in shapes:
            for data in ("normal", "round"):
                x = rng.normal(size=(trials,) + shape).astype(np.float32)
                if data == "round":
                    x = (np.round(x * 2) / 2).astype(np.float32)
                if len(shape) == 1:
                    labels = (rng.random((trials,) + shape) < 0.3).astype(np.float32)
                    hashed = partial(checksum, labels=labels)
                else:
                    labels = rng.integers(0, shape[0], (trials, shape[1])).astype(np.float32)
                    hashed = partial(softmax_checksum, labels=labels)
                before = hashed(x)
                cells = []
                for kind in CHANGES:
                    y = change(x, kind)
                    changed = np.any((y.view(np.uint32) != x.view(np.uint32))
                                     .reshape(trials, -1), axis=1)
                    missed = np.count_nonzero((hashed(y) == before) & changed)
                    cells.append(f"{missed:>6} / {np.count_nonzero(changed):<6}")
                name = f"{data} {'×'.join(map(str, shape))}"
                out.append(f"| {name:<12} | " + " | ".join(cells) + " |")
        out.append("")
    return out[:-1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    print("\n".join(lines(parser.parse_args().trials)))
