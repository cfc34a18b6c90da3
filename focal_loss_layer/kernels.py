"""All of the layers' compiled (numba) code: the float32 math both losses share, the sigmoid pass
(FocalLossLayer) and the softmax pass (SoftmaxFocalLossLayer). Each pass computes, in one go over
the logits, the loss's per-block sums and the gradient of the summed loss, which the layer keeps
for backward (focal_loss_layer.fast).

One module, importing nothing else of this package, because numba's on-disk cache stamps a
compiled function with the one file that defines it: with every helper a pass inlines in this
file, an edit of any of them (or an upgrade, which replaces the file; numba also keys its cache
on its own version) recompiles the passes, and stale machine code cannot be loaded. Only numba's
public API is used (@njit and its documented options, scalar .view for bit casts).

The sigmoid formulas are focal_loss_layer.core's. Per logit x, with e = exp(−|x|), l = log1p(e):

    −log(1−p) = softplus(x)  = max(x, 0) + l        p = 1/(1+e) if x ≥ 0 else e/(1+e)
    −log p    = softplus(−x) = max(−x, 0) + l       q = 1 − p = e/(1+e) if x ≥ 0 else 1/(1+e)
    ℓ⁺ = (1−p)^γ·(−log p)      dℓ⁺/dx = −(1−p)^γ·(γ·p·(−log p) + q)
    ℓ⁻ = p^γ·(−log(1−p))       dℓ⁻/dx =  p^γ·(p + γ·q·(−log(1−p)))
    ℓ  = c⁺·ℓ⁺ + c⁻·ℓ⁻         c⁺ = v·w_c·a⁺·t',  c⁻ = v·w_c·a⁻·(1−t'),  t' = t(1−ε) + ε/2

with v = 0 for an ignored logit, 1 otherwise. The softmax formulas are
focal_loss_layer.softmax_core's (see softmax_pass). One exp and one log1p serve both terms; an
integer γ ≤ 4 raises p and q to the power by multiplication, any other γ by exp(−γ·softplus(∓x)).
Everything per logit is float32 arithmetic written so that LLVM vectorises it (AVX2: 8 logits
per instruction): exp and log1p are polynomials here instead of libm calls, which LLVM cannot
vectorise, and the loops hold no branches, only selects. The small helpers are inlined by numba
(inline="always"): left to LLVM, they are inlined only after the vectoriser ran.

Work is cut into blocks; threads take disjoint block ranges (the passes release the GIL). Per-block
sums (loss, positives, valid count, bad labels: STAT_*) go to one row of `stats` each, summed
afterwards in a fixed order, so the results do not depend on the number of threads. A non-finite
logit makes its block's loss NaN, which is how it is detected.

Each pass is compiled once per machine for each γ path (about 10 s on 2 cores) and its machine
code cached on disk where numba finds a writable folder (NUMBA_CACHE_DIR, `__pycache__` beside
this file, or the user's cache folder); later processes load it in < 1 s. Where none is writable
(a read-only install run by a user without a home), the passes compile in memory for the process,
with one warning.
"""
import warnings

import numpy as np
from numba import njit

BLOCK = 8192            # logits per sigmoid block: a thread's float32 scratch (6 × 32 KB) in L2
# Per-block sums (stats columns, and the scratch rows they are summed from): loss (NaN if a logit
# is not finite), positives Σ t·v, valid count Σ v, bad labels.
STAT_LOSS, STAT_POSITIVES, STAT_VALID, STAT_BAD_LABELS = range(4)
NUM_STATS = 4
# Sigmoid scratch rows after the sums: each logit's sample label (S == 1 with class indices) and
# the block's gradient, staged at the logits' page offset and copied out (_copy_out).
ROW_LABELS, ROW_STAGE = NUM_STATS, NUM_STATS + 1
SCRATCH_ROWS = NUM_STATS + 2
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
_MANTISSA, _ONE_BITS = np.int32(0x007FFFFF), np.int32(0x3F800000)

# float32 arithmetic only; no 'reassoc' (it would undo the Cody–Waite split) and no 'nnan'/'ninf'
# (non-finite logits must be seen). Sums that need reassociation to vectorise are in _sum.
_MATH = dict(error_model="numpy", fastmath={"contract", "afn", "arcp", "nsz"})
_PASS = dict(nogil=True, error_model="numpy")

_warning = {"given": False}     # one warning per process, however many passes fall back


def _cached_njit(function):
    """njit(**_PASS) with numba's on-disk cache, or without it, after one RuntimeWarning, where
    numba finds no writable cache folder (njit(cache=True) raises RuntimeError then)."""
    try:
        return njit(cache=True, **_PASS)(function)
    except RuntimeError as error:     # numba: "cannot cache function ...: no locator available"
        if not _warning["given"]:
            _warning["given"] = True
            warnings.warn(
                f"focal_loss_layer: no writable folder for numba's cache ({error}); the kernels "
                "are compiled in memory for this process (about 10 s per γ path). Set "
                "NUMBA_CACHE_DIR to a writable folder to compile them once.", RuntimeWarning,
                stacklevel=2)
        return njit(**_PASS)(function)


# --- float32 math shared by both passes ----------------------------------------------------------

@njit(inline="always")
def _float32_from_bits(bits):
    """The float32 whose IEEE bits are the int32 `bits` (a bit cast, which vectorises)."""
    return np.int32(bits).view(np.float32)


@njit(inline="always")
def _bits_of_float32(value):
    """The int32 IEEE bits of float32 `value`."""
    return np.float32(value).view(np.int32)


@njit(inline="always", **_MATH)
def exp_nonpositive(x):
    """exp(x) for float32 x ≤ 0 (Cephes expf); 0 below −87.33, where float32 goes subnormal.
    (x > 0 is taken as 0: the exponent bits below hold only x ≤ 0's powers of two.)"""
    underflow = x < _EXP_MIN
    x = min(max(x, _EXP_MIN), _ZERO)
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
def log_normal(v):
    """log(v) for a normal positive float32 v: v = 2^e·f, f ∈ [1, 2), log v = e·ln2 + log1p(f − 1)."""
    bits = _bits_of_float32(v)
    e = _F((bits >> np.int32(23)) - np.int32(127))
    f = _float32_from_bits((bits & _MANTISSA) | _ONE_BITS)
    return e * _LN2_HI + (e * _LN2_LO + log1p_unit(f - _ONE))


@njit(inline="always", **_MATH)
def log1p_to(u):
    """log(1 + u) for finite float32 u ≥ 0: full relative precision for small u."""
    return log1p_unit(min(u, _ONE)) if u <= _ONE else log_normal(_ONE + u)


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


@njit(error_model="numpy", fastmath={"reassoc", "nsz"})
def _sum(values, count):
    """Σ values[:count] in float64, reassociated so that it vectorises; NaN propagates."""
    total = 0.0
    for i in range(count):
        total += np.float64(values[i])
    return total


# --- the sigmoid pass ----------------------------------------------------------------------------

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
def _store(scratch, k, xi, loss, d, t, valid, bad):
    """Scratch column k: ℓ (NaN if the logit is not finite, so that the block's sum is NaN),
    t·v, v, bad, dℓ/dx. Kept per logit and summed afterwards: running sums in the loop would
    stop LLVM from vectorising it. k is unsigned: a signed index that LLVM cannot prove ≥ 0
    gets numba's negative-index wraparound, which also stops it."""
    scratch[STAT_LOSS, k] = loss if abs(xi) <= _FLT_MAX else _NAN
    scratch[STAT_POSITIVES, k] = t
    scratch[STAT_VALID, k] = valid
    scratch[STAT_BAD_LABELS, k] = bad
    scratch[ROW_STAGE, k] = d


@njit(**_MATH)
def _row_segment(x, labels, scratch, base, start, stop, label_offset, w_pos, w_neg, class_id,
                 num_classes, gamma, int_gamma, real_gamma, has_ignore, ignore, smoothing):
    """Logits start..stop of one (n, c) row: weights constant, labels[i + label_offset];
    class_id None for per-class targets, else the row's class id c + 1 (index labels).
    Fills scratch[:, i − base] (see _store)."""
    for i in range(start, stop):
        xi = x[i]
        valid, t, bad, smooth_pos, smooth_neg = _label_terms(
            labels[i + label_offset], class_id, num_classes, has_ignore, ignore, smoothing)
        loss, d = focal_element(xi, w_pos * smooth_pos, w_neg * smooth_neg,
                                gamma, int_gamma, real_gamma)
        _store(scratch, np.uint64(i - base), xi, loss, d, t, valid, bad)


@njit(**_MATH)
def _cycle_segment(x, labels, scratch, start, stop, tile_start, tiles, row_tile, first_row,
                   num_classes, gamma, int_gamma, real_gamma, has_ignore, ignore, smoothing):
    """Logits start..stop of a block when S == 1, where the class cycles along the logits: logit i
    is class c = k mod C, k = tile_start + i − start. Its weights and id c + 1 are read from
    arrays tiled with period C, tiles = (w_pos[k mod C], w_neg[k mod C], (k mod C) + 1), so that
    the loop reads them contiguously instead of one segment per sample.
    row_tile None: per-class targets labels[i]; else labels are class indices, the sample's
    at labels[first_row + row_tile[k]], row_tile[k] = k div C."""
    w_pos, w_neg, class_id = tiles
    if row_tile is not None:
        # Each logit's sample label, copied out first: read through an index inside the main
        # loop, it would keep LLVM from vectorising (it cannot rule out that scratch overlaps).
        for j in range(stop - start):
            scratch[ROW_LABELS, j] = labels[first_row + row_tile[tile_start + j]]
    for i in range(start, stop):
        j = np.uint64(i - start)
        k = np.uint64(tile_start + (i - start))
        xi = x[i]
        if row_tile is None:
            terms = _label_terms(labels[i], None, num_classes, has_ignore, ignore, smoothing)
        else:
            terms = _label_terms(scratch[ROW_LABELS, j], class_id[k], num_classes, has_ignore,
                                 ignore, smoothing)
        valid, t, bad, smooth_pos, smooth_neg = terms
        loss, d = focal_element(xi, w_pos[k] * smooth_pos, w_neg[k] * smooth_neg,
                                gamma, int_gamma, real_gamma)
        _store(scratch, j, xi, loss, d, t, valid, bad)


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


@_cached_njit
def focal_pass(x, labels, grad, stats, scratch, first_block, stop_block, w_pos, w_neg, tiles,
               row_tile, num_classes, inner, index_labels, gamma, int_gamma, real_gamma,
               has_ignore, ignore, smoothing):
    """One sigmoid pass over blocks first_block..stop_block−1 of the logits (block b = logits
    [b·BLOCK, (b+1)·BLOCK)): per-block sums into stats[b] (STAT_*) and grad = c⁺·dℓ⁺/dx +
    c⁻·dℓ⁻/dx, the gradient of the summed loss.

    Layout: logits viewed as (N, C, S), S = the product of the spatial dims. When S > 1 a block
    is walked in segments that each lie in one (n, c) row, so the class and its weights are
    constants and the logits and labels contiguous; when S == 1 the class cycles along the block
    and the weights come from arrays tiled with period C (_cycle_segment). The gradient is staged
    in the scratch, which sits at the logits' page offset, and copied out: stored straight into
    grad, whose page offset relative to the logits' is malloc's choice, the stores stalled the
    logits' loads ("4K aliasing", 2× on small blobs).

    x: float32 (N·C·S,) logits; labels: float32, (N·C·S,) targets or (N·S,) class indices
    (index_labels); grad: float32 like x; stats: float64 (ceil(x.size / BLOCK), NUM_STATS);
    scratch: float32 (SCRATCH_ROWS, BLOCK), any contents; w_pos, w_neg: float32 (C,) = w_c·a⁺,
    w_c·a⁻; tiles, row_tile: see _cycle_segment (used when S == 1; length ≥ BLOCK + C − 1);
    inner: S; gamma: float32 γ; int_gamma, real_gamma: see _powers; ignore: float32
    ignore_label, used if has_ignore; smoothing: float32 ε.
    """
    for b in range(first_block, stop_block):
        base = b * BLOCK
        stop = min(x.size, base + BLOCK)
        if inner == 1 and index_labels:
            _cycle_segment(x, labels, scratch, base, stop, base % num_classes, tiles, row_tile,
                           base // num_classes, num_classes, gamma, int_gamma, real_gamma,
                           has_ignore, ignore, smoothing)
        elif inner == 1:
            _cycle_segment(x, labels, scratch, base, stop, base % num_classes, tiles, None, 0,
                           num_classes, gamma, int_gamma, real_gamma, has_ignore, ignore,
                           smoothing)
        else:
            i = base
            while i < stop:
                row = i // inner
                end = min(stop, (row + 1) * inner)
                n, c = row // num_classes, row % num_classes
                if index_labels:
                    # labels[n, s] for logit (n, c, s) = i: offset n·S − row·S.
                    _row_segment(x, labels, scratch, base, i, end, (n - row) * inner, w_pos[c],
                                 w_neg[c], _F(c + 1), num_classes, gamma, int_gamma, real_gamma,
                                 has_ignore, ignore, smoothing)
                else:
                    _row_segment(x, labels, scratch, base, i, end, 0, w_pos[c], w_neg[c], None,
                                 num_classes, gamma, int_gamma, real_gamma, has_ignore, ignore,
                                 smoothing)
                i = end
        for k in range(NUM_STATS):
            stats[b, k] = _sum(scratch[k], stop - base)
        _copy_out(scratch[ROW_STAGE], grad, base, stop - base)


# --- the softmax pass ----------------------------------------------------------------------------

SOFTMAX_BLOCK = 2048            # positions per softmax block at most
SOFTMAX_BLOCK_LOGITS = 1 << 16  # a block's logits, 256 KB, stay in L2 between its loops
MIN_SOFTMAX_BLOCK = 64
# Softmax scratch rows after the sums (STAT_POSITIVES unused: 0): per position the max over the
# classes, the first class holding it, Z − 1, x_y − m, w_y·a_y, and the gradient's two
# coefficients (dℓ/dx_j / s_j for j ≠ y, and dℓ/dx_y).
(ROW_MAX, ROW_ARGMAX, ROW_REST, ROW_SHIFTED_Y, ROW_WEIGHT, ROW_D_OTHER,
 ROW_D_Y) = range(NUM_STATS, NUM_STATS + 7)
SOFTMAX_SCRATCH_ROWS = NUM_STATS + 7
_NO_REST = _F(1e30)     # −log(1−p) where 1 − p = 0: (1−p)^γ = exp(−γ·1e30) = 0 for γ > 0


@njit(inline="always", **_MATH)
def _position(scratch, col, label, z_minus_1, shifted_y, weight, top, gamma, int_gamma,
              real_gamma, has_ignore, ignore):
    """One position, from Z − 1, x_y − m and w_y·a_y (0 for a label no class matched), into
    scratch column col: the loss, valid and bad-label flags into rows STAT_*, dℓ/dx_j / s_j
    (j ≠ y) into ROW_D_OTHER and dℓ/dx_y into ROW_D_Y.

    Z − 1 is NaN when one of the position's logits is NaN or ±inf (the x·0 added to it): the
    stored loss is then NaN, whatever γ, the label or the weight, which is how non-finite logits
    are found. The log below would not carry that NaN (log_normal reads bits), so the test is
    explicit. Finite logits of any spread stay finite: x_y − m may be −inf when the spread
    exceeds FLT_MAX; then p = 0 and p·(−log p) is taken as 0 (its limit), not 0·inf."""
    ignored = has_ignore & (label == ignore)
    valid = _ZERO if ignored else _ONE
    log_z = log1p_to(z_minus_1)
    minus_log_p = log_z - shifted_y
    sy = exp_nonpositive(shifted_y)
    r = z_minus_1 if shifted_y == _ZERO else z_minus_1 + (_ONE - sy)
    inv_z = _ONE / (_ONE + z_minus_1)
    p = sy * inv_z
    q = r * inv_z
    has_rest = r > _ZERO
    # −log(1 − p) = log(Z / R) = log1p(s_y / R) (Z = R + s_y): ≥ 0 and exact where p is tiny,
    # where log Z − log R cancels (at large γ, (1−p)^γ then came out of range)
    minus_log_q = log1p_to(sy / (r if has_rest else _ONE)) if has_rest else _NO_REST
    _, qg = _powers(p, q, minus_log_p, minus_log_q, int_gamma, real_gamma)
    w = valid * weight
    allowed = (label >= _ZERO) & (label <= top) & (label == np.floor(label))
    loss = _ZERO if w == _ZERO else w * (qg * minus_log_p)
    scratch[STAT_LOSS, col] = _NAN if z_minus_1 != z_minus_1 else loss
    scratch[STAT_VALID, col] = valid
    scratch[STAT_BAD_LABELS, col] = _ZERO if allowed | ignored else _ONE
    p_log_p = p * min(minus_log_p, _FLT_MAX)
    ratio = p_log_p / (r if has_rest else _ONE) if has_rest else _ZERO
    scaled = w * qg
    scratch[ROW_D_OTHER, col] = scaled * (inv_z + gamma * ratio)
    scratch[ROW_D_Y, col] = -scaled * (q + gamma * p_log_p)


@njit(error_model="numpy", fastmath={"nnan", "ninf", "nsz", "reassoc"})
def _row_max(x, start, count):
    """max(x[start:start + count]), a vectorised reduction. With a NaN or ±inf in the row the
    result is undefined; _rows's marker x·0 sees those whatever it is."""
    m = x[start]
    for c in range(1, count):
        v = x[start + np.uint64(c)]
        m = v if v > m else m
    return m


@njit(**_MATH)
def _rows(x, labels, grad, scratch, first_row, count, class_weights, num_classes, gamma,
          int_gamma, real_gamma, has_ignore, ignore):
    """S == 1: rows first_row.. (one position each, its C logits contiguous) into scratch
    columns 0..count−1, as _segment. Per row: the max (a vectorised reduction), the e^{x − m} of
    the classes below it and the maxima flags into scratch rows ROW_REST and ROW_ARGMAX (width
    ≥ C), summed by _sum; x_y read directly; then grad = s_j·coefficient, and dℓ/dx_y.
    (Positions along a stride of C were 2 to 5× slower at C ≥ 8, measured.)"""
    top = _F(num_classes - 1)
    classes = np.uint64(num_classes)
    for i in range(count):
        row = np.uint64(first_row + i)
        base = row * classes
        m = _row_max(x, base, num_classes)
        for c in range(num_classes):
            j = np.uint64(c)
            xj = x[base + j]
            shifted = xj - m
            at_max = shifted == _ZERO
            s = exp_nonpositive(shifted)
            scratch[ROW_REST, j] = (_ZERO if at_max else s) + xj * _ZERO
            scratch[ROW_ARGMAX, j] = _ONE if at_max else _ZERO
        z_minus_1 = _F(_sum(scratch[ROW_REST], num_classes)
                       + (_sum(scratch[ROW_ARGMAX], num_classes) - 1.0))
        label = labels[row]
        picked = (label >= _ZERO) & (label <= top) & (label == np.floor(label))
        y = np.uint64(label) if picked else np.uint64(0)
        shifted_y = x[base + y] - m if picked else _ZERO
        weight = class_weights[y] if picked else _ZERO
        col = np.uint64(i)
        _position(scratch, col, label, z_minus_1, shifted_y, weight, top, gamma, int_gamma,
                  real_gamma, has_ignore, ignore)
        d_other = scratch[ROW_D_OTHER, col]
        for c in range(num_classes):
            j = np.uint64(c)
            grad[base + j] = exp_nonpositive(x[base + j] - m) * d_other
        if picked:
            grad[base + y] = scratch[ROW_D_Y, col]


@njit(**_MATH)
def _segment(x, labels, grad, scratch, column, first, count, stride, label_first, class_weights,
             num_classes, gamma, int_gamma, real_gamma, has_ignore, ignore):
    """S > 1: positions label_first .. label_first + count − 1 of one sample, into scratch
    columns column.. Logit (position i, class c) at x[first + i + c·stride]: every class's
    logits are contiguous along the positions, so each loop runs along them and vectorises
    (8 positions per AVX2 instruction), with no gather:

        1. m = max_c x_c, and the first class holding it
        2. per class c: s_c = e^{x_c − m} (written into grad); Σ s_c over the classes but that
           first maximum (Z − 1 without cancellation: other maxima add exactly 1); x_y − m and
           w_y·a_y taken where label == c (a select)
        3. per position (_position): the loss and the gradient's two coefficients
        4. per class c: grad = label == c ? dℓ/dx_y : s_c · coefficient

    scratch is indexed as one 2-D array (row views would be separate arrays, too many for LLVM
    to check for overlap), and every value is loaded before a select picks it (a load inside the
    select is a branch)."""
    col = np.uint64(column)
    lab0 = np.uint64(label_first)
    # 1.
    for c in range(num_classes):
        start = np.uint64(first + c * stride)
        class_id = _F(c)
        if c == 0:
            for i in range(count):
                k = np.uint64(i)
                scratch[ROW_MAX, col + k] = x[start + k]
                scratch[ROW_ARGMAX, col + k] = _ZERO
        else:
            for i in range(count):
                k = np.uint64(i)
                v = x[start + k]
                m = scratch[ROW_MAX, col + k]
                argmax = scratch[ROW_ARGMAX, col + k]
                greater = v > m
                scratch[ROW_MAX, col + k] = v if greater else m
                scratch[ROW_ARGMAX, col + k] = class_id if greater else argmax
    # 2. (x·0 added to Z − 1: 0, or NaN for a NaN or ±inf logit, the non-finite marker)
    for i in range(count):
        k = np.uint64(i)
        scratch[ROW_REST, col + k] = _ZERO
        scratch[ROW_SHIFTED_Y, col + k] = _ZERO
        scratch[ROW_WEIGHT, col + k] = _ZERO
    for c in range(num_classes):
        start = np.uint64(first + c * stride)
        class_id = _F(c)
        w = class_weights[c]
        for i in range(count):
            k = np.uint64(i)
            xc = x[start + k]
            shifted = xc - scratch[ROW_MAX, col + k]
            s = exp_nonpositive(shifted)
            rest = scratch[ROW_REST, col + k]
            shifted_y = scratch[ROW_SHIFTED_Y, col + k]
            weight = scratch[ROW_WEIGHT, col + k]
            is_max = scratch[ROW_ARGMAX, col + k] == class_id
            picked = labels[lab0 + k] == class_id
            scratch[ROW_REST, col + k] = rest + ((_ZERO if is_max else s) + xc * _ZERO)
            scratch[ROW_SHIFTED_Y, col + k] = shifted if picked else shifted_y
            scratch[ROW_WEIGHT, col + k] = w if picked else weight
            grad[start + k] = s
    # 3.
    top = _F(num_classes - 1)
    for i in range(count):
        k = np.uint64(i)
        _position(scratch, col + k, labels[lab0 + k], scratch[ROW_REST, col + k],
                  scratch[ROW_SHIFTED_Y, col + k], scratch[ROW_WEIGHT, col + k], top, gamma,
                  int_gamma, real_gamma, has_ignore, ignore)
    # 4.
    for c in range(num_classes):
        start = np.uint64(first + c * stride)
        class_id = _F(c)
        for i in range(count):
            k = np.uint64(i)
            j = start + k
            s = grad[j]
            d_y = scratch[ROW_D_Y, col + k]
            d_other = scratch[ROW_D_OTHER, col + k]
            grad[j] = d_y if labels[lab0 + k] == class_id else s * d_other


def softmax_block_positions(num_classes: int) -> int:
    """Positions per softmax block for C classes: SOFTMAX_BLOCK, or as many as keep
    C·block ≈ SOFTMAX_BLOCK_LOGITS (a block's logits stay in L2)."""
    return max(MIN_SOFTMAX_BLOCK, min(SOFTMAX_BLOCK, SOFTMAX_BLOCK_LOGITS // num_classes))


@_cached_njit
def softmax_pass(x, labels, grad, stats, scratch, first_block, stop_block, block, class_weights,
                 num_classes, inner, gamma, int_gamma, real_gamma, has_ignore, ignore):
    """One softmax pass over position blocks first_block..stop_block−1 (positions p = n·S + s,
    the labels' order; block b = positions [b·block, (b+1)·block)): per-block sums into stats[b]
    (STAT_*: loss, 0 positives, valid positions, bad labels) and grad = dℓ/dx, the gradient of
    the summed loss. With spatial dims a block is walked in segments within one sample
    (_segment); without, row by row (_rows).

    The formulas (focal_loss_layer.softmax_core): with m = max_k x_k, s_k = e^{x_k − m},
    Z = Σ s_k, R = Σ_{k≠y} s_k, p = s_y / Z, 1 − p = R / Z:

        ℓ = −w_y·a_y·(1−p)^γ·log p,   −log p = log1p(Z − 1) − (x_y − m)
        dℓ/dx_y = −w_y·a_y·(1−p)^γ·(1 − p + γ·p·(−log p))
        dℓ/dx_j =  w_y·a_y·s_j·(1−p)^γ·(1/Z + γ·p·(−log p)/R)      (j ≠ y)

    x: float32 (N·C·S,) logits; labels: float32 (N·S,) class indices; grad: float32 like x;
    stats: float64 (ceil(N·S / block), NUM_STATS); scratch: float32 (SOFTMAX_SCRATCH_ROWS,
    max(SOFTMAX_BLOCK, C)), any contents; class_weights: float32 (C,) = w_c·a_c; inner: S;
    gamma, int_gamma, real_gamma: see _powers; ignore: float32, used if has_ignore."""
    positions = labels.size
    for b in range(first_block, stop_block):
        base = b * block
        stop = min(positions, base + block)
        if inner == 1:
            _rows(x, labels, grad, scratch, base, stop - base, class_weights, num_classes, gamma,
                  int_gamma, real_gamma, has_ignore, ignore)
        else:
            p = base
            while p < stop:
                n = p // inner
                end = min(stop, (n + 1) * inner)
                _segment(x, labels, grad, scratch, p - base,
                         n * num_classes * inner + (p - n * inner), end - p, inner, p,
                         class_weights, num_classes, gamma, int_gamma, real_gamma, has_ignore,
                         ignore)
                p = end
        count = stop - base
        stats[b, STAT_LOSS] = _sum(scratch[STAT_LOSS], count)
        stats[b, STAT_POSITIVES] = 0.0
        stats[b, STAT_VALID] = _sum(scratch[STAT_VALID], count)
        stats[b, STAT_BAD_LABELS] = _sum(scratch[STAT_BAD_LABELS], count)
