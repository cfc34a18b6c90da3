"""Compiled (numba) kernels of the fast path: a forward pass for the loss, the normaliser's counts
and the input checks; a backward pass that writes the scaled gradient.

The formulas are focal_loss_layer.core's. Per logit x, with e = exp(−|x|) and l = log1p(e):

    −log(1−p) = softplus(x)  = max(x, 0) + l        p = 1/(1+e) if x ≥ 0 else e/(1+e)
    −log p    = softplus(−x) = max(−x, 0) + l       q = 1 − p = e/(1+e) if x ≥ 0 else 1/(1+e)
    ℓ⁺ = (1−p)^γ·(−log p)      dℓ⁺/dx = −(1−p)^γ·(γ·p·(−log p) + q)
    ℓ⁻ = p^γ·(−log(1−p))       dℓ⁻/dx =  p^γ·(p + γ·q·(−log(1−p)))
    ℓ  = c⁺·ℓ⁺ + c⁻·ℓ⁻         c⁺ = v·w_c·a⁺·t',  c⁻ = v·w_c·a⁻·(1−t'),  t' = t(1−ε) + ε/2

with v = 0 for an ignored logit, 1 otherwise. One exp and one log1p serve both terms; an integer
γ ≤ 4 raises p and q to the power by multiplication, any other γ by exp(−γ·softplus(∓x)) as the
core does. Everything per logit is float32 arithmetic written so that LLVM vectorises it (AVX2:
8 logits per instruction): exp and log1p are evaluated by polynomials here instead of libm calls,
which LLVM cannot vectorise, and the loops hold no branches, only selects. The small helpers are
inlined by numba (inline="always"): left to LLVM, they are inlined only after the vectoriser ran.

Layout: logits are viewed as (N, C, S), S = product of the spatial dims, flattened C-order. Work is
cut into blocks of BLOCK logits; threads take disjoint block ranges (focal_pass releases the GIL).
When S > 1, a block is walked in segments that each lie in one (n, c) row, so the class and its
weights are constants and the logits and labels are contiguous; when S == 1 the class cycles along
the block, and weights come from arrays tiled with period C. Per-block sums (loss, positives,
valid count, bad labels) go to one row of `stats` each, summed afterwards in a fixed order: the
result does not depend on the number of threads. A non-finite logit makes its block's loss NaN,
which is how it is detected.

Both modes also add up a hash of the IEEE bits of every logit and label they read
(checksum_pairs of each chunk of CHECKSUM_CHUNK logits, right after the main loop computed it,
while it is in L1), modulo 2^32, into stats[b, STAT_CHECKSUM]: an integer sum, exact in any
order, so forward's and backward's agree to the bit on unchanged inputs whatever the compiler
did (their float losses need not: FMA contraction may differ between the two compiled modes).
fast.BlockedKernel.backward compares them to see logits or labels that changed since forward.

Numba compiles focal_pass once per machine for each γ path and mode (forward, backward; about 9 s
each on 2 cores) and caches the machine code, keyed on every source it is built from
(focal_loss_layer.compiled_cache); later processes load it in < 1 s.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .compiled_cache import cache_compiled_code

BLOCK = 8192            # logits per block: a thread's float32 scratch (5 × 32 KB) stays in L2
# Per-block sums (stats columns): loss (NaN if a logit is not finite), positives Σ t·v,
# valid count Σ v, bad labels, each summed from a scratch row; then the checksum of the inputs.
STAT_LOSS, STAT_POSITIVES, STAT_VALID, STAT_BAD_LABELS = range(4)
NUM_STATS = 4
STAT_CHECKSUM = NUM_STATS
STATS_COLUMNS = NUM_STATS + 1
SCRATCH_ROWS = NUM_STATS + 1   # a thread's scratch: one row per sum, one for expanded labels
# Backward (no sums) stages a block's gradient in row 0, at the logits' page offset, and copies it
# out: written straight into Caffe's diff, whose page offset relative to the logits' is malloc's
# choice, the stores stalled the logits' loads ("4K aliasing", 2× on small blobs).
STAGE_ROW = 0
CHECKSUM_CHUNK = 2048   # logits per checksum_pairs call in the segments: hashed while in L1
MAX_MULTIPLIED_GAMMA = 4  # integer γ up to this is raised to by multiplication

_F = np.float32
_ZERO, _HALF, _ONE, _TWO, _NAN = _F(0), _F(0.5), _F(1), _F(2), _F(np.nan)
_FLT_MAX = _F(np.finfo(np.float32).max)
# Cephes expf: exp(x) = 2^n · exp(r), r = x − n·ln2 split in two parts (Cody–Waite), degree-6
# polynomial for exp(r) on |r| ≤ ln2/2; relative error ≤ 2 ulp.
_LOG2E = _F(1.44269504088896341)
_LN2_HI, _LN2_LO = _F(0.693359375), _F(-2.12194440e-4)
_EXP_P = tuple(_F(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                               4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))
_EXP_MIN = _F(-87.33)   # below, exp underflows float32's normal range: returned as 0
# log1p(u) = 2·atanh(s), s = u/(2+u) ∈ [0, 1/3] for u ∈ [0, 1]: 2s·Σ s^2k/(2k+1), 8 terms leave a
# relative error below 2e-9, and small u keep full relative precision (no 1 + u is rounded).
_ATANH = tuple(_F(1.0 / (2 * k + 1)) for k in range(1, 8))

# float32 arithmetic only; no 'reassoc' (it would undo the Cody–Waite split) and no 'nnan'/'ninf'
# (non-finite logits must be seen). Sums that need reassociation to vectorise are in _sum.
_MATH = dict(error_model="numpy", fastmath={"contract", "afn", "arcp", "nsz"})


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose IEEE bits are the int32 `bits` (a vectorisable bitcast)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@intrinsic
def _bits_of_float32(typingctx, value):
    """The int32 IEEE bits of float32 `value` (a vectorisable bitcast)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen


_MIX_OFFSET = np.uint32(0x9E3779B9)   # odd, irregular bits: round numbers do not stay round


@njit(inline="always")
def _mix(h):
    """(h XOR h >> 16 + _MIX_OFFSET)² modulo 2^32 for uint32 h: one multiply (a stronger hash,
    murmur3's fmix32, cost 15 to 50 % of backward here), after which a change of h changes the
    result by an amount that depends on h's other bits, high and low."""
    h = np.uint32(np.uint32(h ^ (h >> np.uint32(16))) + _MIX_OFFSET)
    return np.uint32(h * h)


@njit(inline="always")
def checksum_add(total, x, label):
    """total + _mix(IEEE bits of float32 x + those of label), modulo 2^32 (uint32): a sum of
    integers, the same in any order. Mixed, not the bits themselves: an in-place layer's
    elementwise change moves the bits by structured amounts that cancel in a plain sum (see
    checksum_pairs, which uses this for an odd last logit; the softmax pass without spatial
    dims, for each logit)."""
    return np.uint32(total + _mix(np.uint32(np.uint32(_bits_of_float32(x))
                                            + np.uint32(_bits_of_float32(label)))))


@intrinsic
def _two_words(typingctx, array, index):
    """The uint64 whose low and high halves are the IEEE bits of float32 array[index] and
    array[index + 1] (one 8-byte load; a vectorisable bitcast)."""
    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        pointer = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(64).as_pointer())
        return builder.load(pointer, align=4)
    return types.uint64(array, index), codegen


_PAIR_OFFSET = np.uint64(0x9E3779B97F4A7C15)
_LOW_HALF = np.uint64(0xFFFFFFFF)


@njit
def checksum_pairs(x, x_start, labels, label_start, count):
    """The checksum of logits x[x_start:][:count] with labels[label_start:][:count] (uint32;
    labels None: of x alone, as if the labels were 0):
    with h_k = IEEE bits of x[x_start + k] + those of labels[label_start + k] (per 32-bit word),
    for each pair of neighbours (k, k + 1), k even, the 64-bit g = h_k + 2^32·h_{k+1} +
    _PAIR_OFFSET, and Σ (g mod 2^32)·(g div 2^32) modulo 2^64, folded to 32 bits; an odd last
    logit adds checksum_add's term. One 32×32→64-bit multiply per two logits (vpmuludq, one
    instruction for 8 logits), where checksum_add takes a 32-bit multiply (two) per logit.

    The product makes a change of one word move the sum by an amount that depends on its
    neighbour's bits, so the structured changes of an in-place layer do not cancel as in a
    plain sum of bits (a sign flip adds 2^31 to a word, so an even count of them adds 0
    modulo 2^32; ×2^k adds k·2^23). What it still misses: changes that only permute equal
    (logit, label) pairs' values between pairs with equal neighbours (two equal-magnitude
    logits swapping signs), and by coincidence; `python -m benchmarks.checksum_misses` counts
    the misses per 100000 random blobs: none for N(0, 1) logits of 12 or 512 values under
    negation, ×2, ×0.5, ReLU, abs, round, one sign flipped or two signs swapped (at random
    positions); on logits rounded to multiples of 0.5, 12 values: negation 2, abs 33, two
    signs swapped 1465 (512 values: 1547).

    A loop of its own, run after the pass's main loop over the same logits: inside that loop
    the hash's registers made LLVM spill and the check cost 19 % of backward. The passes run it
    over chunks of CHECKSUM_CHUNK logits right after computing them, while they are in L1
    (after a whole 8192-logit block, read again from L2, the check cost 1.05–1.19× backward,
    `python -m benchmarks.backward_check`); the softmax pass sums terms of the same kind, one
    per eight logits, inside its first loop (softmax_kernels._max_steps)."""
    xs, ls = np.uint64(x_start), np.uint64(label_start)
    total = np.uint64(0)
    for k in range(count // 2):
        j = np.uint64(2 * k)
        g = _two_words(x, xs + j) + _PAIR_OFFSET
        if labels is not None:
            g += _two_words(labels, ls + j)
        total += (g & _LOW_HALF) * (g >> np.uint64(32))
    folded = fold_pair_sum(total)
    if count % 2:
        j = np.uint64(count - 1)
        folded = checksum_add(folded, x[xs + j], _ZERO if labels is None else labels[ls + j])
    return folded


@njit(inline="always")
def fold_pair_sum(total):
    """A uint64 sum of pair terms folded to 32 bits, as checksum_pairs does."""
    return np.uint32(np.uint32(total) + np.uint32(total >> np.uint64(32)) * _MIX_OFFSET)


@njit(inline="always", **_MATH)
def exp_nonpositive(x):
    """exp(x) for float32 x ≤ 0 (Cephes expf); 0 below −87.33, where float32 goes subnormal."""
    underflow = x < _EXP_MIN
    x = max(x, _EXP_MIN)
    n = np.floor(x * _LOG2E + _HALF)
    r = x - n * _LN2_HI
    r = r - n * _LN2_LO
    c0, c1, c2, c3, c4, c5 = _EXP_P
    poly = (((((c0 * r + c1) * r + c2) * r + c3) * r + c4) * r + c5) * (r * r) + r + _ONE
    two_n = _float32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))
    return _ZERO if underflow else poly * two_n


@njit(inline="always", **_MATH)
def log1p_unit(u):
    """log(1 + u) for float32 u ∈ [0, 1], to full relative precision for small u."""
    s = u / (_TWO + u)
    s2 = s * s
    k3, k5, k7, k9, k11, k13, k15 = _ATANH
    return _TWO * s * (_ONE + s2 * (k3 + s2 * (k5 + s2 * (k7 + s2 * (k9 + s2 * (
        k11 + s2 * (k13 + s2 * k15)))))))


@njit(inline="always", **_MATH)
def _powers(p, q, minus_log_p, minus_log_q, int_gamma, real_gamma):
    """(p^γ, (1−p)^γ). real_gamma is None for an integer γ = int_gamma ≤ 4 (selects of products),
    else float32 γ (exp(−γ·softplus)). numba compiles each case separately and drops the other."""
    if real_gamma is None:
        p2, q2 = p * p, q * q
        pg = _ONE if int_gamma == 0 else (p if int_gamma == 1 else (
            p2 if int_gamma == 2 else (p2 * p if int_gamma == 3 else p2 * p2)))
        qg = _ONE if int_gamma == 0 else (q if int_gamma == 1 else (
            q2 if int_gamma == 2 else (q2 * q if int_gamma == 3 else q2 * q2)))
        return pg, qg
    return exp_nonpositive(-real_gamma * minus_log_p), exp_nonpositive(-real_gamma * minus_log_q)


@njit(inline="always", **_MATH)
def focal_element(x, c_pos, c_neg, gamma, int_gamma, real_gamma):
    """(ℓ, dℓ/dx) = (c⁺·ℓ⁺ + c⁻·ℓ⁻, c⁺·dℓ⁺/dx + c⁻·dℓ⁻/dx) for one float32 logit x."""
    e = exp_nonpositive(-abs(x))
    shared = log1p_unit(e)
    r = _ONE / (_ONE + e)
    er = e * r
    nonneg = x >= _ZERO
    p = r if nonneg else er
    q = er if nonneg else r
    minus_log_q = max(x, _ZERO) + shared
    minus_log_p = max(-x, _ZERO) + shared
    pg, qg = _powers(p, q, minus_log_p, minus_log_q, int_gamma, real_gamma)
    pos_grad = -qg * (gamma * p * minus_log_p + q)
    neg_grad = pg * (p + gamma * q * minus_log_q)
    loss = c_pos * (qg * minus_log_p) + c_neg * (pg * minus_log_q)
    return loss, c_pos * pos_grad + c_neg * neg_grad


@njit(inline="always", **_MATH)
def _label_terms(v, class_id, num_classes, has_ignore, ignore, smoothing):
    """From one label value: float32 (v, t·v, bad, t'·v, (1−t')·v), v = 0 if ignored else 1.

    class_id None: v is a per-class target t; else v is a class index and t = [v == class_id].
    `bad` is labels.check_labels's test, value for value.
    """
    ignored = has_ignore & (v == ignore)
    if class_id is None:
        allowed = (v >= _ZERO) & (v <= _ONE)
        t = v
    else:
        allowed = (v >= _ZERO) & (v <= num_classes) & (v == np.floor(v))
        t = _ONE if v == class_id else _ZERO
    valid = _ZERO if ignored else _ONE
    t = _ZERO if ignored else t
    smoothed = t * (_ONE - smoothing) + smoothing * _HALF
    bad = _ZERO if allowed | ignored else _ONE
    return valid, t, bad, valid * smoothed, valid - valid * smoothed


@njit(inline="always", **_MATH)
def _store(scratch, k, xi, loss, t, valid, bad):
    """Scratch column k: ℓ (NaN if the logit is not finite, so that the block's sum is NaN),
    t·v, v, bad. Kept per logit and summed afterwards: running sums in the loop would stop LLVM
    from vectorising it. k is unsigned: a signed index that LLVM cannot prove ≥ 0 gets numba's
    negative-index wraparound, which also stops it."""
    scratch[0, k] = loss if abs(xi) <= _FLT_MAX else _NAN
    scratch[1, k] = t
    scratch[2, k] = valid
    scratch[3, k] = bad


@njit(**_MATH)
def _row_segment(x, labels, grad, grad_scale, stats, scratch, base, start, stop, label_offset,
                 w_pos, w_neg, class_id, num_classes, gamma, int_gamma, real_gamma, has_ignore,
                 ignore, smoothing):
    """Logits start..stop of one (n, c) row: weights constant, labels[i + label_offset];
    class_id None for per-class targets, else the row's class id c + 1 (index labels).
    Fills scratch[:, i − base] (see _store) in forward (grad None), and grad[i] =
    grad_scale·dℓ/dx unless grad is None. Returns the segment's checksum unless stats is None
    (then 0): checksum_pairs of each CHECKSUM_CHUNK logits (and labels), added."""
    checksum = np.uint32(0)
    for first in range(start, stop, CHECKSUM_CHUNK):
        end = min(stop, first + CHECKSUM_CHUNK)
        for i in range(first, end):
            xi = x[i]
            label = labels[i + label_offset]
            valid, t, bad, smooth_pos, smooth_neg = _label_terms(
                label, class_id, num_classes, has_ignore, ignore, smoothing)
            loss, d = focal_element(xi, w_pos * smooth_pos, w_neg * smooth_neg,
                                    gamma, int_gamma, real_gamma)
            if grad is not None:
                scratch[STAGE_ROW, np.uint64(i - base)] = d * grad_scale
            else:
                _store(scratch, np.uint64(i - base), xi, loss, t, valid, bad)
        if stats is not None:
            checksum = np.uint32(checksum + checksum_pairs(x, first, labels, first + label_offset,
                                                           end - first))
    return checksum


@njit(**_MATH)
def _cycle_segment(x, labels, grad, grad_scale, stats, scratch, start, stop, tile_start, tiles,
                   row_tile, first_row, num_classes, gamma, int_gamma, real_gamma, has_ignore,
                   ignore, smoothing):
    """Logits start..stop of a block when S == 1, where the class cycles along the logits: logit i
    is class c = k mod C, k = tile_start + i − start. Its weights and id c + 1 are read from
    arrays tiled with period C, tiles = (w_pos[k mod C], w_neg[k mod C], (k mod C) + 1), so that
    the loop reads them contiguously instead of one segment per sample.
    row_tile None: per-class targets labels[i]; else labels are class indices, the sample's
    at labels[first_row + row_tile[k]], row_tile[k] = k div C. Returns the checksum as
    _row_segment: checksum_pairs of each CHECKSUM_CHUNK logits with their labels (class
    indices: each logit's sample label), added."""
    checksum = np.uint32(0)
    w_pos, w_neg, class_id = tiles
    if row_tile is not None:
        # Each logit's sample label, copied out first: read through an index inside the main
        # loop, it would keep LLVM from vectorising (it cannot rule out that grad overlaps it).
        expanded = scratch[NUM_STATS]
        for j in range(stop - start):
            expanded[j] = labels[first_row + row_tile[tile_start + j]]
    for first in range(start, stop, CHECKSUM_CHUNK):
        end = min(stop, first + CHECKSUM_CHUNK)
        for i in range(first, end):
            j = np.uint64(i - start)
            k = np.uint64(tile_start + (i - start))
            xi = x[i]
            label = labels[i] if row_tile is None else scratch[NUM_STATS, j]
            if row_tile is None:
                terms = _label_terms(label, None, num_classes, has_ignore, ignore, smoothing)
            else:
                terms = _label_terms(label, class_id[k], num_classes, has_ignore, ignore,
                                     smoothing)
            valid, t, bad, smooth_pos, smooth_neg = terms
            loss, d = focal_element(xi, w_pos[k] * smooth_pos, w_neg[k] * smooth_neg,
                                    gamma, int_gamma, real_gamma)
            if grad is not None:
                scratch[STAGE_ROW, j] = d * grad_scale
            else:
                _store(scratch, j, xi, loss, t, valid, bad)
        if stats is not None:
            if row_tile is None:
                part = checksum_pairs(x, first, labels, first, end - first)
            else:
                part = checksum_pairs(x, first, expanded, first - start, end - first)
            checksum = np.uint32(checksum + part)
    return checksum


@njit(error_model="numpy", fastmath={"reassoc", "nsz"})
def _sum(values, count):
    """Σ values[:count] in float64, reassociated so that it vectorises; NaN propagates."""
    total = 0.0
    for i in range(count):
        total += np.float64(values[i])
    return total


@njit(nogil=True, error_model="numpy")
def focal_pass(x, labels, grad, grad_scale, stats, scratch, first_block, stop_block, w_pos,
               w_neg, tiles, row_tile, num_classes, inner, index_labels, gamma, int_gamma,
               real_gamma, has_ignore, ignore, smoothing):
    """One pass over blocks first_block..stop_block−1 of the logits (block b = logits
    [b·BLOCK, (b+1)·BLOCK)). Forward (grad None): per-block sums into stats[b] (see STAT_*).
    Backward: grad = grad_scale·(c⁺·dℓ⁺/dx + c⁻·dℓ⁻/dx), and the inputs' checksum into
    stats[b, STAT_CHECKSUM] unless stats is None (forward writes it too). numba
    compiles each mode on its own and drops the other's work. Releases the GIL, so that threads
    can run disjoint block ranges at once, each with its own scratch.

    x: float32 (N·C·S,) logits; labels: float32, (N·C·S,) targets or (N·S,) class indices
    (index_labels); grad: float32 like x, or None; grad_scale: float32; stats: float64
    (ceil(x.size / BLOCK), STATS_COLUMNS), or None; scratch: float32 (SCRATCH_ROWS, BLOCK), any
    contents; w_pos, w_neg: float32 (C,) = w_c·a⁺, w_c·a⁻; tiles, row_tile: see _cycle_segment
    (used when S == 1; length ≥ BLOCK + C − 1); inner: S; gamma: float32 γ; int_gamma,
    real_gamma: see _powers; ignore: float32 ignore_label, used if has_ignore; smoothing: float32 ε.
    """
    for b in range(first_block, stop_block):
        base = b * BLOCK
        stop = min(x.size, base + BLOCK)
        checksum = np.uint32(0)
        if inner == 1 and index_labels:
            checksum = _cycle_segment(
                x, labels, grad, grad_scale, stats, scratch, base, stop, base % num_classes, tiles,
                row_tile, base // num_classes, num_classes, gamma, int_gamma, real_gamma,
                has_ignore, ignore, smoothing)
        elif inner == 1:
            checksum = _cycle_segment(
                x, labels, grad, grad_scale, stats, scratch, base, stop, base % num_classes, tiles,
                None, 0, num_classes, gamma, int_gamma, real_gamma, has_ignore, ignore, smoothing)
        else:
            # Segments of one (n, c) row each: class and weights constant, logits contiguous.
            i = base
            while i < stop:
                row = i // inner
                end = min(stop, (row + 1) * inner)
                n, c = row // num_classes, row % num_classes
                if index_labels:
                    # labels[n, s] for logit (n, c, s) = i: offset n·S − row·S.
                    segment = _row_segment(
                        x, labels, grad, grad_scale, stats, scratch, base, i, end,
                        (n - row) * inner, w_pos[c], w_neg[c], _F(c + 1), num_classes, gamma,
                        int_gamma, real_gamma, has_ignore, ignore, smoothing)
                else:
                    segment = _row_segment(
                        x, labels, grad, grad_scale, stats, scratch, base, i, end, 0, w_pos[c],
                        w_neg[c], None, num_classes, gamma, int_gamma, real_gamma, has_ignore,
                        ignore, smoothing)
                checksum = np.uint32(checksum + segment)
                i = end
        # numba types both branches of `a is None` for an array a: each test is on an argument
        # that is None in the mode that must skip it.
        if stats is not None:
            stats[b, STAT_CHECKSUM] = np.uint32(checksum)
            if grad is None:
                for k in range(NUM_STATS):
                    stats[b, k] = _sum(scratch[k], stop - base)
        if grad is not None:
            _copy_out(scratch[STAGE_ROW], grad, base, stop - base)


@njit(**_MATH)
def _copy_out(source, target, offset, count):
    """target[offset:offset + count] = source[:count], in the order that avoids 4K aliasing:
    backwards when target sits a little ahead of source modulo 4096 (a store to target[j] would
    otherwise stall the loads of source[j + k] that follow), forwards otherwise."""
    ahead = (np.int64(target.ctypes.data) + 4 * offset - np.int64(source.ctypes.data)) % 4096
    if 0 < ahead < 2048:
        for k in range(count):
            j = np.uint64(count - 1 - k)
            target[np.uint64(offset) + j] = source[j]
    else:
        for k in range(count):
            j = np.uint64(k)
            target[np.uint64(offset) + j] = source[j]


cache_compiled_code(focal_pass)
