"""Compiled (numba) pass of SoftmaxFocalLossLayer's fast path: forward (loss, counts, input
checks) or backward (the scaled gradient). The formulas are focal_loss_layer.softmax_core's; the
float32 building blocks (exp, log1p, (1−p)^γ, per-block sums) are focal_loss_layer.kernels'.

Positions p = n·S + s (the labels' order) are cut into blocks of `block` positions, at most BLOCK
and fewer for many classes (block_positions: a block's logits stay in L2); threads take
disjoint block ranges.

With spatial dims (S > 1) a block is walked in segments within one sample, where every class's
logits are contiguous along the positions (class stride S). Each loop runs along the positions
and vectorises (8 positions per AVX2 instruction, 16 with AVX-512), with no gather:

    1. m = max_c x_c, and the first class holding it
    2. per class c: s_c = e^{x_c − m}; Σ s_c over the classes but that first maximum (Z − 1
       without cancellation: other maxima add exactly 1); x_y − m and the weight w_y·a_y taken
       where label == c (a select); backward: s_c written into grad
    3. per position: −log p = log1p(Z − 1) − (x_y − m), R = Σ_{k≠y} s_k, 1 − p = R/Z, (1−p)^γ,
       the loss; backward: the two coefficients of the gradient,
           dℓ/dx_y = −(1−p)^γ·(1 − p + γ·p·(−log p))
           dℓ/dx_j = s_j · (1−p)^γ·(1/Z + γ·p·(−log p)/R)      (j ≠ y)
    4. backward, per class c: grad = label == c ? dℓ/dx_y : s_c · coefficient

Without spatial dims (S == 1) a position's C logits are contiguous instead: _rows walks them row
by row, the max and the two sums as vectorised reductions along the classes, x_y read directly,
then the same per-position arithmetic (_position). (Positions along a stride of C were 2 to 5×
slower at C ≥ 8, measured.)

Per-block sums (kernels.STAT_*: loss, 0 positives, valid positions, bad labels) go to one row of
`stats` each, summed afterwards in a fixed order: the result does not depend on the thread count.
A non-finite logit makes its block's loss NaN. Both modes add the inputs' checksum into
stats[b, STAT_CHECKSUM], for backward's check that they did not change since forward: _segment
sums a hash of each class's logits inside loop 1 (_max_steps), and softmax_pass adds
checksum_pairs of the block's labels; _rows adds kernels.checksum_add of each logit with its
label.
Compiled once per machine for each γ path and mode, cached like kernels.focal_pass
(compiled_cache.cache_compiled_code).
"""
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from llvmlite.ir import types as ir_types
from numba import njit, types
from numba.extending import intrinsic

from .compiled_cache import cache_compiled_code
from .kernels import (
    _F,
    _FLT_MAX,
    _LN2_HI,
    _LN2_LO,
    _LOW_HALF,
    _MATH,
    _NAN,
    _ONE,
    _PAIR_OFFSET,
    _ZERO,
    NUM_STATS,
    STAT_BAD_LABELS,
    STAT_CHECKSUM,
    STAT_LOSS,
    STAT_POSITIVES,
    STAT_VALID,
    _bits_of_float32,
    _float32_from_bits,
    _powers,
    _sum,
    checksum_add,
    checksum_pairs,
    exp_nonpositive,
    fold_pair_sum,
    log1p_unit,
)

BLOCK = 2048    # positions per block at most: scratch 9 × 8 KB
BLOCK_LOGITS = 1 << 16   # a block's logits, 256 KB, stay in L2 between its passes
MIN_BLOCK = 64
# Scratch rows: the per-position values summed into stats (kernels.STAT_* rows; in backward
# rows STAT_LOSS and STAT_POSITIVES hold the two gradient coefficients), then the pass's own.
ROW_MAX, ROW_ARGMAX, ROW_REST, ROW_SHIFTED_Y, ROW_WEIGHT = range(NUM_STATS, NUM_STATS + 5)
SCRATCH_ROWS = NUM_STATS + 5
_MANTISSA, _ONE_BITS = np.int32(0x007FFFFF), np.int32(0x3F800000)
_NO_REST = _F(1e30)     # −log(1−p) where 1 − p = 0: (1−p)^γ = exp(−γ·1e30) = 0 for γ > 0


MAX_STEP = 32   # positions per step of _max_steps: four 256-bit vectors of float32, 2 lines
VECTOR = 8      # float32 per vector


def _has_masked_stores() -> bool:
    """Whether the CPU numba compiles for stores vectors under a mask in one instruction
    (AVX-512VL). AVX's vmaskmovps also does, but slowly on some CPUs (many µops on AMD's
    Zen 2 and 3); without AVX-512VL _max_steps blends and stores instead. numba's own view of
    the target: NUMBA_CPU_FEATURES, else the host's less what NUMBA_ENABLE_AVX=0 turns off."""
    from numba.core import codegen, config
    features = config.CPU_FEATURES
    if features is None:
        features = codegen.get_host_cpu_features()
    return "+avx512vl" in features.split(",")


MASKED_STORES = _has_masked_stores()


def _declare_masked(module, kind, floats):
    """(llvm.masked.load or .store on a vector of floats, whether it takes an alignment
    argument), named and typed for the LLVM numba uses: llvmlite mangles pointers typed (older
    LLVM needs that; LLVM 22 renames it), and LLVM 22 moved the alignment into an attribute
    (without one it assumes 1; x86's masked moves need none)."""
    pointer, mask = floats.as_pointer(), ir.VectorType(ir.IntType(1), floats.count)
    typed = f"v{floats.count}f32" if ir_types.ir_layer_typed_pointers_enabled else ""
    with_alignment = llvm.llvm_version_info < (22,)
    alignment = [ir.IntType(32)] if with_alignment else []
    arguments = ([pointer, *alignment, mask, floats] if kind == "load" else
                 [floats, pointer, *alignment, mask])
    function = module.declare_intrinsic(
        f"llvm.masked.{kind}.v{floats.count}f32.p0{typed}", (),
        ir.FunctionType(floats if kind == "load" else ir.VoidType(), arguments))
    return function, with_alignment


@intrinsic
def _max_steps(typingctx, x, x_start, maxima, argmaxes, column, steps, class_id, stats, ahead,
               rest):
    """Loop 1 of _segment for one class's run of steps·MAX_STEP + rest positions, in LLVM IR on
    MAX_STEP / VECTOR vectors of VECTOR floats per step (the maxima of the whole steps; the
    rest's are _segment's; the checksum of the whole run): v = x[x_start + i]; class_id None (class
    0): maxima[column + i] = v, argmaxes[column + i] = 0; else where v > maxima[column + i]
    (ordered: never for NaN), both take v and class_id (with AVX-512VL, MASKED_STORES, the
    class stored under that mask: the argmax is neither loaded nor blended, fewer vector
    instructions beside the hash's). Each step also prefetches into L2 the lines
    `ahead` logits on (the next block's). x_start, column, steps, ahead, rest uint64.

    Unless stats is None, returns the run's checksum terms, summed modulo 2^64 (else 0): those
    of its steps and, when rest (< MAX_STEP) is not 0, of the step of its last `rest` logits
    padded with zero bits (masked loads), one term per pair of logits in each quarter: with
    A_j, B_j, C_j, D_j (j < VECTOR / 2) the uint64 words holding the IEEE bits of the pairs of
    logits (2j, 2j + 1) of the step's four quarters, rol(w, k) w rotated left by k bits and i
    the index in x of the step's first logit, u_j = A_j + rol(B_j, 1) + rol(C_j, 2) +
    rol(D_j, 3) + kernels._PAIR_OFFSET + i (modulo 2^64) and the term
    (u_j mod 2^32)·(u_j div 2^32): kernels.checksum_pairs's term, but one 32×32→64-bit
    multiply per eight logits, from the vectors loop 1 loaded anyway (about 12 integer
    instructions per 32 logits with AVX-512VL's vprolq; 18 where a rotation takes two shifts
    and an or). Each u_j changes with any one of its words (rotations lose no bit; 2^k·B_j
    did, and a sign flip of 24 logits in 64 went unseen), differently per quarter, and i
    makes whole steps that change places change the sum.

    Written in IR because the terms need the loaded vectors' lanes two by two: in a loop LLVM
    vectorises, the hash went into separate loops that read the logits again (the check then
    cost 1.06–1.16× backward, most on blobs that stay in cache; `python -m
    benchmarks.backward_check` gives today's). The prefetch made both modes faster on blobs
    larger than the cache (backward 7.0–7.4 ms instead of 7.6–7.9 ms at (8, 21, 256, 256))."""
    first_class = isinstance(class_id, types.NoneType)
    hashing = not isinstance(stats, types.NoneType)
    lane, word = ir.IntType(64), ir.IntType(32)
    half = VECTOR
    floats, words = ir.VectorType(ir.FloatType(), half), ir.VectorType(lane, half // 2)

    def codegen(context, builder, signature, args):
        x_array, x_first, max_array, argmax_array, col, count, cid, _, ahead, rest = args

        def data(index):
            return context.make_array(signature.args[index])(
                context, builder, args[index]).data

        def at(pointer, first, offset):
            return builder.bitcast(builder.gep(pointer, [builder.add(first, offset)]),
                                   floats.as_pointer())

        x_data, max_data, argmax_data = data(0), data(2), data(3)
        zero_words = ir.Constant(words, [0] * (half // 2))
        class_ids = ir.Constant(floats, [0.0] * half)
        byte_pointer = ir.IntType(8).as_pointer()
        masked_store, with_alignment = _declare_masked(builder.module, "store", floats)
        masked_load, _ = _declare_masked(builder.module, "load", floats)
        alignment = [ir.Constant(word, 4)] if with_alignment else []
        rotate = builder.module.declare_intrinsic(
            f"llvm.fshl.v{half // 2}i64", (), ir.FunctionType(words, [words] * 3))
        prefetch = builder.module.declare_intrinsic(
            "llvm.prefetch", [byte_pointer],
            ir.FunctionType(ir.VoidType(), [byte_pointer, word, word, word]))
        if not first_class:
            for k in range(half):
                class_ids = builder.insert_element(class_ids, cid, ir.Constant(word, k))

        def splat(value, vector):
            """value in every lane of a vector of type `vector`."""
            one = builder.insert_element(ir.Constant(vector, [0] * vector.count), value,
                                         ir.Constant(word, 0))
            return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(
                word, vector.count), [0] * vector.count))

        def add_term(total, parts, first):
            # u = A + rol(B, 1) + rol(C, 2) + rol(D, 3) + _PAIR_OFFSET + the step's first
            # logit's index: rotations (vprolq), not shifts, which drop top bits (x·2^k lost
            # the sign of 24 logits in 64); the index, so that whole steps changing places
            # (two classes' logits swapped, a map flipped) change the sum
            g = splat(builder.add(builder.add(x_first, first),
                                  ir.Constant(lane, int(_PAIR_OFFSET))), words)
            for turn, part in enumerate(parts):
                g = builder.add(g, builder.call(rotate, [part, part, ir.Constant(
                    words, [turn] * (half // 2))]) if turn else part)
            low = builder.and_(g, ir.Constant(words, [int(_LOW_HALF)] * (half // 2)))
            high = builder.lshr(g, ir.Constant(words, [32] * (half // 2)))
            return builder.add(total, builder.mul(low, high))

        entry = builder.block
        loop = builder.append_basic_block("max_steps.loop")
        done = builder.append_basic_block("max_steps.done")
        builder.cbranch(builder.icmp_unsigned("!=", count, ir.Constant(lane, 0)), loop, done)

        builder.position_at_end(loop)
        step = builder.phi(lane)
        total = builder.phi(words)
        new_total = total
        parts = []
        at_step = builder.mul(step, ir.Constant(lane, MAX_STEP))
        for part in range(MAX_STEP // VECTOR):
            offset = builder.add(at_step, ir.Constant(lane, part * half))
            v = builder.load(at(x_data, x_first, offset), align=4)
            max_at, argmax_at = at(max_data, col, offset), at(argmax_data, col, offset)
            if first_class:
                builder.store(v, max_at, align=4)
                builder.store(ir.Constant(floats, [0.0] * half), argmax_at, align=4)
            else:
                m = builder.load(max_at, align=4)
                greater = builder.fcmp_ordered(">", v, m)
                builder.store(builder.select(greater, v, m), max_at, align=4)
                if MASKED_STORES:
                    # (LLVM makes the max's select and store one masked store itself)
                    builder.call(masked_store, [class_ids, argmax_at, *alignment, greater])
                else:
                    a = builder.load(argmax_at, align=4)
                    builder.store(builder.select(greater, class_ids, a), argmax_at, align=4)
            parts.append(builder.bitcast(v, words))
        if hashing:
            new_total = add_term(new_total, parts, at_step)
        # The lines `ahead` logits on (the next block's), into L2: read, locality 2, data.
        for line in range(0, MAX_STEP, 16):
            later = builder.gep(x_data, [builder.add(builder.add(x_first, at_step),
                                                     builder.add(ahead, ir.Constant(lane, line)))])
            builder.call(prefetch, [builder.bitcast(later, byte_pointer), ir.Constant(word, 0),
                                    ir.Constant(word, 2), ir.Constant(word, 1)])
        next_step = builder.add(step, ir.Constant(lane, 1))
        step.add_incoming(ir.Constant(lane, 0), entry)
        step.add_incoming(next_step, loop)
        total.add_incoming(zero_words, entry)
        total.add_incoming(new_total, loop)
        builder.cbranch(builder.icmp_unsigned("!=", next_step, count), loop, done)

        builder.position_at_end(done)
        result = builder.phi(words)
        result.add_incoming(zero_words, entry)
        result.add_incoming(new_total, loop)
        if hashing:
            # The rest of the run (rest < MAX_STEP logits): one more term, of a step whose lanes
            # past the run are loaded as 0 (masked loads: those lanes are not read)
            before_rest = builder.block
            rest_block = builder.append_basic_block("max_steps.rest")
            end = builder.append_basic_block("max_steps.end")
            builder.cbranch(builder.icmp_unsigned("!=", rest, ir.Constant(lane, 0)), rest_block,
                            end)
            builder.position_at_end(rest_block)
            lanes = splat(builder.trunc(rest, word), ir.VectorType(word, half))
            stepped = builder.mul(count, ir.Constant(lane, MAX_STEP))
            rest_parts = []
            for part in range(MAX_STEP // VECTOR):
                inside = builder.icmp_unsigned("<", ir.Constant(ir.VectorType(word, half), [
                    part * half + k for k in range(half)]), lanes)
                v = builder.call(masked_load, [at(x_data, x_first, builder.add(
                    stepped, ir.Constant(lane, part * half))), *alignment, inside,
                    ir.Constant(floats, [0.0] * half)])
                rest_parts.append(builder.bitcast(v, words))
            rest_total = add_term(result, rest_parts, stepped)
            builder.branch(end)
            builder.position_at_end(end)
            final = builder.phi(words)
            final.add_incoming(result, before_rest)
            final.add_incoming(rest_total, rest_block)
            result = final
        sum_lanes = ir.Constant(lane, 0)
        for k in range(half // 2):
            sum_lanes = builder.add(sum_lanes, builder.extract_element(result, ir.Constant(word, k)))
        return sum_lanes

    return types.uint64(x, types.uint64, maxima, argmaxes, types.uint64, types.uint64, class_id,
                        stats, types.uint64, types.uint64), codegen


@njit(inline="always", **_MATH)
def log_normal(v):
    """log(v) for a normal positive float32 v: v = 2^e·f, f ∈ [1, 2), log v = e·ln2 + log1p(f − 1)."""
    bits = _bits_of_float32(v)
    e = _F((bits >> np.int32(23)) - np.int32(127))
    f = _float32_from_bits((bits & _MANTISSA) | _ONE_BITS)
    return e * _LN2_HI + (e * _LN2_LO + log1p_unit(f - _ONE))


@njit(inline="always", **_MATH)
def log1p_to(u):
    """log(1 + u) for float32 u ∈ [0, C]: full relative precision for small u."""
    return log1p_unit(min(u, _ONE)) if u <= _ONE else log_normal(_ONE + u)


@njit(inline="always", **_MATH)
def _position(scratch, col, grad, grad_scale, label, z_minus_1, shifted_y, weight, top, gamma,
              int_gamma, real_gamma, has_ignore, ignore):
    """One position, from Z − 1, x_y − m and w_y·a_y (0 for a label no class matched), into
    scratch column col. Forward (grad None): the loss, valid and bad-label flags into rows
    STAT_*; backward: grad_scale·dℓ/dx_j / s_j (j ≠ y) into row STAT_LOSS and grad_scale·dℓ/dx_y
    into row STAT_POSITIVES.

    Z − 1 is NaN when one of the position's logits is NaN or ±inf (the x·0 added to it): the
    stored loss is then NaN, whatever γ, the label or the weight, which is how forward finds
    non-finite logits. The log below would not carry that NaN (log_normal reads bits), so the
    test is explicit. Finite logits of any spread stay finite: x_y − m may be −inf when the
    spread exceeds FLT_MAX; then p = 0 and p·(−log p) is taken as 0 (its limit), not 0·inf."""
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
    minus_log_q = log_z - log_normal(r if has_rest else _ONE) if has_rest else _NO_REST
    _, qg = _powers(p, q, minus_log_p, minus_log_q, int_gamma, real_gamma)
    w = valid * weight
    if grad is None:
        allowed = (label >= _ZERO) & (label <= top) & (label == np.floor(label))
        loss = _ZERO if w == _ZERO else w * (qg * minus_log_p)
        scratch[STAT_LOSS, col] = _NAN if z_minus_1 != z_minus_1 else loss
        scratch[STAT_VALID, col] = valid
        scratch[STAT_BAD_LABELS, col] = _ZERO if allowed | ignored else _ONE
    else:
        p_log_p = p * min(minus_log_p, _FLT_MAX)
        ratio = p_log_p / (r if has_rest else _ONE) if has_rest else _ZERO
        scaled = grad_scale * w * qg
        scratch[STAT_LOSS, col] = scaled * (inv_z + gamma * ratio)
        scratch[STAT_POSITIVES, col] = -scaled * (q + gamma * p_log_p)


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
def _rows(x, labels, grad, grad_scale, stats, scratch, first_row, count, class_weights,
          num_classes, gamma, int_gamma, real_gamma, has_ignore, ignore):
    """S == 1 with many classes: rows first_row.. (one position each, its C logits contiguous)
    into scratch columns 0..count−1, as _segment. Per row: the max (a vectorised reduction), the
    e^{x − m} of the classes below it and the maxima flags into scratch rows ROW_REST and
    ROW_ARGMAX (width ≥ C), summed by kernels._sum; x_y read directly; backward writes
    grad = s_j·coefficient, then dℓ/dx_y. Returns the checksum of the logits and labels read
    (kernels.checksum_add in the loop, where a separate kernels.checksum_pairs measured no
    cheaper; a row's label once per class), 0 if stats is None."""
    top = _F(num_classes - 1)
    classes = np.uint64(num_classes)
    checksum = np.uint32(0)
    for i in range(count):
        row = np.uint64(first_row + i)
        base = row * classes
        m = _row_max(x, base, num_classes)
        label = labels[row]
        for c in range(num_classes):
            j = np.uint64(c)
            xj = x[base + j]
            if stats is not None:
                checksum = checksum_add(checksum, xj, label)
            shifted = xj - m
            at_max = shifted == _ZERO
            s = exp_nonpositive(shifted)
            scratch[ROW_REST, j] = (_ZERO if at_max else s) + xj * _ZERO
            scratch[ROW_ARGMAX, j] = _ONE if at_max else _ZERO
        z_minus_1 = _F(_sum(scratch[ROW_REST], num_classes)
                       + (_sum(scratch[ROW_ARGMAX], num_classes) - 1.0))
        picked = (label >= _ZERO) & (label <= top) & (label == np.floor(label))
        y = np.uint64(label) if picked else np.uint64(0)
        shifted_y = x[base + y] - m if picked else _ZERO
        weight = class_weights[y] if picked else _ZERO
        col = np.uint64(i)
        _position(scratch, col, grad, grad_scale, label, z_minus_1, shifted_y, weight, top, gamma,
                  int_gamma, real_gamma, has_ignore, ignore)
        if grad is not None:
            d_other = scratch[STAT_LOSS, col]
            for c in range(num_classes):
                j = np.uint64(c)
                grad[base + j] = exp_nonpositive(x[base + j] - m) * d_other
            if picked:
                grad[base + y] = scratch[STAT_POSITIVES, col]
    return checksum


@njit(**_MATH)
def _segment(x, labels, grad, grad_scale, stats, scratch, column, first, count, stride,
             label_first, class_weights, num_classes, gamma, int_gamma, real_gamma, has_ignore,
             ignore):
    """S > 1: positions label_first .. label_first + count − 1 of one sample, into scratch
    columns column.. (see the module docstring's loops). Logit (position i, class c) at
    x[first + i + c·stride]. grad None: forward, the per-position loss, valid and bad flags into
    rows STAT_*; else backward, grad written. Returns the logits' checksum (0 if stats is
    None): the terms _max_steps sums over each class's run of logits, all added and folded once
    (kernels.fold_pair_sum) (softmax_pass adds the labels'; benchmarks.checksum_misses.
    softmax_checksum replays both).
    Written so that LLVM vectorises every loop: scratch indexed as one 2-D array (row views
    would be separate arrays, too many to check for overlap), and every value loaded before a
    select picks it (a load inside the select is a branch)."""
    col = np.uint64(column)
    lab0 = np.uint64(label_first)
    # 1. the maximum over the classes, and the first class holding it; with stats, the
    # logits' checksum from the same loads (_max_steps's terms, all classes' added, folded once)
    pair_sum = np.uint64(0)
    maxima, argmaxes = scratch[ROW_MAX], scratch[ROW_ARGMAX]
    steps = np.uint64(count // MAX_STEP)
    stepped = steps * MAX_STEP
    rest = np.uint64(count - stepped)
    # The next block's logits of the same class: `count` on within a sample; the next sample's
    # when the segment is a whole sample.
    ahead = np.uint64(num_classes * count if count == stride else count)
    for c in range(num_classes):
        start = np.uint64(first + c * stride)
        class_id = _F(c)
        if c == 0:
            total = _max_steps(x, start, maxima, argmaxes, col, steps, None, stats, ahead,
                               rest)
            for i in range(stepped, count):
                k = np.uint64(i)
                scratch[ROW_MAX, col + k] = x[start + k]
                scratch[ROW_ARGMAX, col + k] = _ZERO
        else:
            total = _max_steps(x, start, maxima, argmaxes, col, steps, class_id, stats,
                               ahead, rest)
            for i in range(stepped, count):
                k = np.uint64(i)
                v = x[start + k]
                m = scratch[ROW_MAX, col + k]
                argmax = scratch[ROW_ARGMAX, col + k]
                greater = v > m
                scratch[ROW_MAX, col + k] = v if greater else m
                scratch[ROW_ARGMAX, col + k] = class_id if greater else argmax
        pair_sum += total
    checksum = fold_pair_sum(pair_sum) if stats is not None else np.uint32(0)
    # 2. per class: e^{x − m}; Z − 1 = Σ over all classes but the argmax (other maxima add 1
    # each, exactly), plus x·0: 0, or NaN for a NaN or ±inf logit (the non-finite marker, see
    # _position); what the label picks
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
            if grad is not None:
                grad[start + k] = s
    # 3. per position
    top = _F(num_classes - 1)
    for i in range(count):
        k = np.uint64(i)
        _position(scratch, col + k, grad, grad_scale, labels[lab0 + k], scratch[ROW_REST, col + k],
                  scratch[ROW_SHIFTED_Y, col + k], scratch[ROW_WEIGHT, col + k], top, gamma,
                  int_gamma, real_gamma, has_ignore, ignore)
    # 4. backward: the gradient, from the e^{x − m} left in grad
    if grad is not None:
        for c in range(num_classes):
            start = np.uint64(first + c * stride)
            class_id = _F(c)
            for i in range(count):
                k = np.uint64(i)
                j = start + k
                s = grad[j]
                d_y = scratch[STAT_POSITIVES, col + k]
                d_other = scratch[STAT_LOSS, col + k]
                grad[j] = d_y if labels[lab0 + k] == class_id else s * d_other
    return checksum


def block_positions(num_classes: int) -> int:
    """Positions per block for C classes: BLOCK, or as many as keep C·block ≈ BLOCK_LOGITS."""
    return max(MIN_BLOCK, min(BLOCK, BLOCK_LOGITS // num_classes))


@njit(nogil=True, error_model="numpy")
def softmax_pass(x, labels, grad, grad_scale, stats, scratch, first_block, stop_block, block,
                 class_weights, num_classes, inner, gamma, int_gamma, real_gamma, has_ignore,
                 ignore):
    """One pass over position blocks first_block..stop_block−1 (block b = positions
    [b·block, (b+1)·block), block ≤ BLOCK). Forward (grad None): per-block
    sums into stats[b] (kernels.STAT_*). Backward: grad = grad_scale·dℓ/dx, and the inputs'
    checksum into stats[b, STAT_CHECKSUM] unless stats is None (forward writes it too).
    Releases the GIL: threads run disjoint block ranges, each with its own scratch.

    x: float32 (N·C·S,) logits; labels: float32 (N·S,) class indices; grad: float32 like x, or
    None; grad_scale: float32; stats: float64 (ceil(N·S / block), STATS_COLUMNS), or None; scratch:
    float32 (SCRATCH_ROWS, max(BLOCK, C)), any contents; class_weights: float32 (C,) = w_c·a_c;
    inner: S;
    gamma, int_gamma, real_gamma: see kernels._powers; ignore: float32, used if has_ignore."""
    positions = labels.size
    for b in range(first_block, stop_block):
        base = b * block
        stop = min(positions, base + block)
        if inner == 1:
            checksum = _rows(x, labels, grad, grad_scale, stats, scratch, base, stop - base,
                             class_weights, num_classes, gamma, int_gamma, real_gamma, has_ignore,
                             ignore)
        else:
            checksum = np.uint32(0)
            p = base
            while p < stop:
                n = p // inner
                end = min(stop, (n + 1) * inner)
                segment = _segment(x, labels, grad, grad_scale, stats, scratch, p - base,
                                   n * num_classes * inner + (p - n * inner), end - p, inner, p,
                                   class_weights, num_classes, gamma, int_gamma, real_gamma,
                                   has_ignore, ignore)
                checksum = np.uint32(checksum + segment)
                p = end
            if stats is not None:
                # The block's labels at once, after its segments read them (in L1 then; hashed
                # per segment, first, their loads cost about 1 % of backward on small maps).
                checksum = np.uint32(checksum + checksum_pairs(labels, base, None, 0,
                                                               stop - base))
        # (tests on the argument that is None in the mode that skips them: kernels.focal_pass)
        if stats is not None:
            stats[b, STAT_CHECKSUM] = np.uint32(checksum)
            if grad is None:
                count = stop - base
                stats[b, STAT_LOSS] = _sum(scratch[STAT_LOSS], count)
                stats[b, STAT_POSITIVES] = 0.0
                stats[b, STAT_VALID] = _sum(scratch[STAT_VALID], count)
                stats[b, STAT_BAD_LABELS] = _sum(scratch[STAT_BAD_LABELS], count)


cache_compiled_code(softmax_pass)
