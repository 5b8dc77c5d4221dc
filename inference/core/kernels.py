"""Compiled (numba) kernels for QuantMatrix: x @ W.T without ever holding W in float32.

    matmul(x float32 [T, cols], w QuantMatrix) -> float32 [T, rows]

- T <= BYTE_DOT_MAX_STEPS[type] (decode, a few sequences) for Q4_1, Q4_K, Q6_K, Q8_0 on CPUs with AVX-512
  VNNI: byte dots. x is quantized to two int8 planes per 32 columns (K-quants: per 256) and each 64 packed
  weight bytes are multiplied in registers as loaded, 64 products per instruction (vpdpbusd), unpacked once
  for two rows of x; see "byte dot products" and "byte dots of the K-quants".
- T <= INT_DOT_MAX_STEPS[type] (Q4_K, Q6_K up to FEW_ROWS_MAX; Q4_0, Q4_1, Q8_0 at one or two rows, more with
  VNNI): integer dots. x is quantized to int16, each thread unpacks its chunk of rows to int16 two at a time and sums 32
  products per instruction (vpdpwssd); see "integer dot products".
- T <= FEW_ROWS_MAX, other cases (decode, small batches): each thread takes a chunk of output rows, dequantizes
  them 4 at a time into a float32 scratch that stays in cache, and dots them with all T rows of x.
  Each weight byte is read from memory once for all T; the dots are vectorised FMA loops.
- T > FEW_ROWS_MAX (prefill): a panel of rows is dequantized into a reused float32 buffer, then BLAS
  sgemm multiplies it (there the flops dominate, and BLAS blocks them best).
- KOTATSU_KERNELS=numpy: the pure-numpy reference of inference.core.quantized instead.

Each quant type has one compiled row dequantizer; the drivers pick it by an integer type code, so they
are compiled once for all types (the five arrays of a QuantMatrix have the same types whatever its
quant type). Compiled code is cached on disk in NUMBA_CACHE_DIR (default $VAR_DIR/numba-cache).
"""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from gguf import GGML_QUANT_SIZES

# Unless the caller chose one, compiled kernels are cached under VAR_DIR like all runtime state.
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.abspath(os.environ.get("VAR_DIR", "var")), "numba-cache"))

import numba  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba import njit, prange, types  # noqa: E402
from numba.core.errors import TypingError  # noqa: E402
from numba.extending import intrinsic  # noqa: E402
from threadpoolctl import ThreadpoolController  # noqa: E402

from inference.core import simd  # noqa: E402
from inference.core.quantized import (  # noqa: E402
    SUPPORTED_TYPES,
    Q,
    QuantMatrix,
    reference_matmul,
    use_numpy_kernels,
)

# numba reads its environment at its first import, which may have come before this module's.
numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]

# Up to this T the few-rows kernel beats dequantize + BLAS (measured on 8960 x 1536 Q4_K: equal at
# T = 64 on one thread, 20 % faster at T = 32 on two).
FEW_ROWS_MAX = 32
# Up to how many rows of x each type is multiplied by integer dots (see "integer dot products"); the float
# kernel above that, and for the other types. Measured (bench/kernels.py, one thread, against the float kernel
# in the same rounds): on AVX-512 VNNI, Q4_K 1.3-1.8x and Q6_K 2-3x at every T. The 32-weight block types pay
# a float conversion per 64 weights per row of x: on AVX2 (no VNNI) they gain at one row (and Q8_0 at two) and
# lose from 4-8 rows on; with VNNI (vpdpwssd) Q8_0 and Q4_1 gain 1.1-1.4x at 4-8 rows (SmolLM2's head and
# layers), at 16 the float kernel was as fast or faster. They also need an even number of blocks per row.
INT_DOT_MAX_STEPS = {
    Q.Q4_K: FEW_ROWS_MAX, Q.Q6_K: FEW_ROWS_MAX, Q.Q4_0: 1,
    Q.Q4_1: 8 if simd.HAS_VNNI else 1, Q.Q8_0: 8 if simd.HAS_VNNI else 2,
}
# How many rows ahead of the one they compute the integer-dot kernels prefetch W's bytes. (In the byte-dot kernels,
# which read a row in less time, the hardware's prefetcher did better alone: Q4_K and Q4_1 at T = 1-2 lost 10-30 %.)
PREFETCH_ROWS = 4
# The integer-dot kernels walk the columns in blocks whose int16 x (all T rows) takes about this many bytes, so
# that it stays in L1 while a group of ROW_GROUP_DOTS weight rows is dotted with it (x of T = 8 rows of 8960
# columns, 143 KB, was read from L2 for each pair of weight rows).
X_BLOCK_BYTES = 24 << 10
ROW_GROUP_DOTS = 16
# Output rows dequantized together by the few-rows kernel (dots4 is written for 4).
ROW_GROUP = 4
# float32 bytes of one dequantized panel for the BLAS path (measured: 1 MB panels halve sgemm's speed).
PANEL_BYTES = 4 << 20
TYPE_CODES = {qtype: code for code, qtype in enumerate(SUPPORTED_TYPES)}
# The codes as plain globals: numba freezes them into the compiled code as constants.
Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 = (TYPE_CODES[t] for t in (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0))
Q2_K, Q3_K, Q4_K, Q5_K, Q6_K = (TYPE_CODES[t] for t in (Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K))
F16, BF16, F32 = (TYPE_CODES[t] for t in (Q.F16, Q.BF16, Q.F32))

COMPILE = dict(cache=True, nogil=True)
F32_ZERO = np.float32(0.0)


# --- vector building blocks, written in LLVM IR ----------------------------------------------------
# numba leaves the per-block loops of these formats scalar: a 16- or 32-weight loop is fully unrolled,
# and the SLP vectoriser then gives up because it cannot prove the float32 output does not alias the
# quant bytes. So the one step that matters, "16 packed fields -> 16 scaled float32", is emitted here
# as plain LLVM vector IR (<16 x i8> -> <16 x i32> -> <16 x float>), which LLVM lowers to AVX-512,
# AVX2 or NEON alike. Everything around it stays numba.

I8, I32, F32_IR = ir.IntType(8), ir.IntType(32), ir.FloatType()
LANES = 16


@intrinsic
def f16(typingctx, bits):
    """float16 bits (uint16) -> float32: an exact `fpext half` (one vcvtph2ps with F16C)."""

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), F32_IR)

    return types.float32(types.uint16), codegen


@intrinsic
def bits_to_f32(typingctx, bits):
    """Reinterpret uint32 bits as float32 (numba has no scalar bit cast)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], F32_IR)

    return types.float32(types.uint32), codegen


def unpack16(low_mask, high="none", high_mask=0, high_pos=0, signed=False, with_min=False):
    """An intrinsic writing 16 float32 values of one (sub-)block:

        out[at + i] = float(q_i - offset) * scale (+ minimum)            for i in 0..15
        q_i = (low[low_at + i] >> low_shift) & low_mask                   (sign-extended byte when signed)
              | ((high[high_at + i] >> high_shift) & high_mask) << high_pos     high="bytes"
              | ((high's uint32 at high_at >> (high_shift + i)) & 1) << 4       high="bits32" (Q5_0/Q5_1)

    low/high/out are C-contiguous arrays indexed flat. q - offset and its product with a float16-derived
    scale are exact in float32, and a minimum is added once: the result is gguf's value bit for bit.
    """

    @intrinsic
    def unpack(typingctx, out, at, low, low_at, low_shift, high_array, high_at, high_shift, offset, scale, minimum):
        if not all(isinstance(a, types.Array) and a.layout == "C" for a in (out, low, high_array)):
            raise TypingError("unpack16 indexes C-contiguous arrays flat")
        signature = types.void(
            out, types.intp, low, types.intp, types.intp, high_array, types.intp, types.intp, types.intp,
            types.float32, types.float32,
        )

        def codegen(context, builder, signature, args):
            out_v, at_v, low_v, low_at_v, low_shift_v, high_v, high_at_v, high_shift_v, offset_v, scale_v, min_v = args

            def vector(element):
                return ir.VectorType(element, LANES)

            def splat(value, element):
                return simd.splat(builder, value, vector(element))

            def const(value):
                return splat(ir.Constant(I32, value), I32)

            def pointer(array_type, array, start, element):
                return simd.element_pointer(context, builder, array_type, array, start, element)

            def load_bytes(array_type, array, start):
                return builder.load(pointer(array_type, array, start, vector(I8)), align=1)

            raw = load_bytes(signature.args[2], low_v, low_at_v)  # <16 x i8>
            if signed:
                q = builder.sext(raw, vector(I32))
            else:
                q = builder.lshr(builder.zext(raw, vector(I32)), splat(builder.trunc(low_shift_v, I32), I32))
                q = builder.and_(q, const(low_mask))
            if high == "bytes":
                h = builder.zext(load_bytes(signature.args[5], high_v, high_at_v), vector(I32))
                h = builder.and_(builder.lshr(h, splat(builder.trunc(high_shift_v, I32), I32)), const(high_mask))
                q = builder.or_(q, builder.shl(h, const(high_pos)))
            elif high == "bits32":
                word = builder.load(pointer(signature.args[5], high_v, high_at_v, I32), align=1)
                lane = ir.Constant(vector(I32), list(range(LANES)))
                shifts = builder.add(lane, splat(builder.trunc(high_shift_v, I32), I32))
                h = builder.and_(builder.lshr(splat(word, I32), shifts), const(1))
                q = builder.or_(q, builder.shl(h, const(4)))
            q = builder.sub(q, splat(builder.trunc(offset_v, I32), I32))
            values = builder.fmul(builder.sitofp(q, vector(F32_IR)), splat(scale_v, F32_IR))
            if with_min:
                values = builder.fadd(values, splat(min_v, F32_IR))
            builder.store(values, pointer(signature.args[0], out_v, at_v, vector(F32_IR)), align=4)
            return context.get_dummy_value()

        return signature, codegen

    return unpack


NIBBLES = unpack16(15)  # Q4_0
NIBBLES_MIN = unpack16(15, with_min=True)  # Q4_1, Q4_K
NIBBLES_BIT = unpack16(15, high="bits32")  # Q5_0
NIBBLES_BIT_MIN = unpack16(15, high="bits32", with_min=True)  # Q5_1
NIBBLES_HIGH_BIT_MIN = unpack16(15, high="bytes", high_mask=1, high_pos=4, with_min=True)  # Q5_K
NIBBLES_HIGH_CRUMB = unpack16(15, high="bytes", high_mask=3, high_pos=4)  # Q6_K
CRUMBS_MIN = unpack16(3, with_min=True)  # Q2_K
CRUMBS_HIGH_BIT = unpack16(3, high="bytes", high_mask=1, high_pos=2)  # Q3_K
SIGNED_BYTES = unpack16(0, signed=True)  # Q8_0


# --- one row of each type -> float32 [cols] ------------------------------------------------------
# Each writes row r into `out` [cols], calling an unpack16 per 16 weights. Byte positions are flat
# indices into the C-contiguous [rows, nb, bytes] arrays. Formulas follow gguf.quants (see unpack16).


@njit(**COMPILE)
def row_q4_0(d, qs, r, out):
    # byte j of a block: weight j (low nibble) and weight 16 + j (high nibble)
    nb = qs.shape[1]
    for b in range(nb):
        scale, at = f16(d[r, b]), (r * nb + b) * 16
        NIBBLES(out, 32 * b, qs, at, 0, qs, 0, 0, 8, scale, F32_ZERO)
        NIBBLES(out, 32 * b + 16, qs, at, 4, qs, 0, 0, 8, scale, F32_ZERO)


@njit(**COMPILE)
def row_q4_1(d, dmin, qs, r, out):
    nb = qs.shape[1]
    for b in range(nb):
        scale, minimum, at = f16(d[r, b]), f16(dmin[r, b]), (r * nb + b) * 16
        NIBBLES_MIN(out, 32 * b, qs, at, 0, qs, 0, 0, 0, scale, minimum)
        NIBBLES_MIN(out, 32 * b + 16, qs, at, 4, qs, 0, 0, 0, scale, minimum)


@njit(**COMPILE)
def row_q5_0(d, qs, qh, r, out):
    # bit j of the block's little-endian uint32 qh is the fifth bit of weight j
    nb = qs.shape[1]
    for b in range(nb):
        scale, at, high_at = f16(d[r, b]), (r * nb + b) * 16, (r * nb + b) * 4
        NIBBLES_BIT(out, 32 * b, qs, at, 0, qh, high_at, 0, 16, scale, F32_ZERO)
        NIBBLES_BIT(out, 32 * b + 16, qs, at, 4, qh, high_at, 16, 16, scale, F32_ZERO)


@njit(**COMPILE)
def row_q5_1(d, dmin, qs, qh, r, out):
    nb = qs.shape[1]
    for b in range(nb):
        scale, minimum = f16(d[r, b]), f16(dmin[r, b])
        at, high_at = (r * nb + b) * 16, (r * nb + b) * 4
        NIBBLES_BIT_MIN(out, 32 * b, qs, at, 0, qh, high_at, 0, 0, scale, minimum)
        NIBBLES_BIT_MIN(out, 32 * b + 16, qs, at, 4, qh, high_at, 16, 0, scale, minimum)


@njit(**COMPILE)
def row_q8_0(d, qs, r, out):
    nb = qs.shape[1]
    for b in range(nb):
        scale, at = f16(d[r, b]), (r * nb + b) * 32
        SIGNED_BYTES(out, 32 * b, qs, at, 0, qs, 0, 0, 0, scale, F32_ZERO)
        SIGNED_BYTES(out, 32 * b + 16, qs, at + 16, 0, qs, 0, 0, 0, scale, F32_ZERO)


@njit(inline="always", **COMPILE)
def k_sub_block(sub):
    """Where 16-weight sub-block `sub` of a 256-weight Q2_K/Q3_K/Q6_K block lies: (its 128-weight half, its
    32-weight run p in that half, which 16 of the run), the indices their packed bits are laid out by."""
    return sub // 8, (sub % 8) // 2, sub % 2


@njit(**COMPILE)
def row_q2_k(d, dmin, scales, qs, r, out):
    # 16 sub-blocks of 16; in each half of 128 weights, bits 2p..2p+1 of its 32 qs bytes are weights
    # 32p..32p+31. scales byte: low nibble scale, high nibble min.
    nb = qs.shape[1]
    for b in range(nb):
        block_scale, block_min = f16(d[r, b]), f16(dmin[r, b])
        for sub in range(16):
            half, p, sixteenth = k_sub_block(sub)
            packed = scales[r, b, sub]
            scale = block_scale * np.float32(packed & 15)
            minimum = -(block_min * np.float32(packed >> 4))
            at = (r * nb + b) * 64 + 32 * half + 16 * sixteenth
            CRUMBS_MIN(out, 256 * b + 16 * sub, qs, at, 2 * p, qs, 0, 0, 0, scale, minimum)


@njit(**COMPILE)
def row_q3_k(d, scales, qs, qh, r, out):
    # Q2_K's low bits; bit 4*half + p of hmask byte j is the third bit of weight 32(4*half + p) + j,
    # and a 0 there means -4: q = (low | high << 2) - 4.
    nb = qs.shape[1]
    for b in range(nb):
        block_scale = f16(d[r, b])
        for sub in range(16):
            half, p, sixteenth = k_sub_block(sub)
            scale = block_scale * (np.float32(scales[r, b, sub]) - np.float32(32.0))
            at = (r * nb + b) * 64 + 32 * half + 16 * sixteenth
            high_at = (r * nb + b) * 32 + 16 * sixteenth
            CRUMBS_HIGH_BIT(out, 256 * b + 16 * sub, qs, at, 2 * p, qh, high_at, 4 * half + p, 4, scale, F32_ZERO)


@njit(**COMPILE)
def row_q4_k(d, dmin, scales, qs, r, out):
    # 8 sub-blocks of 32: scales[:8] scales, scales[8:] mins. Byte j of the s-th 32-byte run of qs holds
    # weight 64s + j (low nibble) and 64s + 32 + j (high nibble).
    nb = qs.shape[1]
    for b in range(nb):
        block_scale, block_min = f16(d[r, b]), f16(dmin[r, b])
        for sub in range(8):
            scale = block_scale * np.float32(scales[r, b, sub])
            minimum = -(block_min * np.float32(scales[r, b, 8 + sub]))
            at = (r * nb + b) * 128 + 32 * (sub // 2)
            for sixteenth in range(2):
                NIBBLES_MIN(out, 256 * b + 32 * sub + 16 * sixteenth, qs, at + 16 * sixteenth, 4 * (sub % 2),
                            qs, 0, 0, 0, scale, minimum)


@njit(**COMPILE)
def row_q5_k(d, dmin, scales, qs, qh, r, out):
    # Q4_K plus a fifth bit: bit `sub` of qh byte j belongs to weight 32 * sub + j.
    nb = qs.shape[1]
    for b in range(nb):
        block_scale, block_min = f16(d[r, b]), f16(dmin[r, b])
        for sub in range(8):
            scale = block_scale * np.float32(scales[r, b, sub])
            minimum = -(block_min * np.float32(scales[r, b, 8 + sub]))
            at = (r * nb + b) * 128 + 32 * (sub // 2)
            for sixteenth in range(2):
                NIBBLES_HIGH_BIT_MIN(out, 256 * b + 32 * sub + 16 * sixteenth, qs, at + 16 * sixteenth,
                                     4 * (sub % 2), qh, (r * nb + b) * 32 + 16 * sixteenth, sub, 0, scale, minimum)


@njit(**COMPILE)
def row_q6_k(d, scales, qs, qh, r, out):
    # Weight 128*half + 32p + j: low nibble of qs[64*half + 32(p % 2) + j] (high nibble for p >= 2), top
    # two bits from bits 2p of qh[32*half + j]; q - 32 times one of 16 int8 scales (one per 16 weights).
    nb = qs.shape[1]
    for b in range(nb):
        block_scale = f16(d[r, b])
        for sub in range(16):
            half, p, sixteenth = k_sub_block(sub)
            scale = block_scale * np.float32(np.int8(scales[r, b, sub]))
            at = (r * nb + b) * 128 + 64 * half + 32 * (p % 2) + 16 * sixteenth
            high_at = (r * nb + b) * 64 + 32 * half + 16 * sixteenth
            NIBBLES_HIGH_CRUMB(out, 256 * b + 16 * sub, qs, at, 4 * (p // 2), qh, high_at, 2 * p, 32, scale, F32_ZERO)


@njit(**COMPILE)
def row_f16(qs, r, out):
    halves = qs[r, 0].view(np.uint16)  # [cols]
    for j in range(out.size):
        out[j] = f16(halves[j])


@njit(**COMPILE)
def row_bf16(qs, r, out):
    halves = qs[r, 0].view(np.uint16)  # [cols]
    for j in range(out.size):
        out[j] = bits_to_f32(np.uint32(halves[j]) << np.uint32(16))


@njit(**COMPILE)
def row_f32(qs, r, out):
    out[:] = qs[r, 0].view(np.float32)  # [cols]


@njit(**COMPILE)
def dequantize_row(code, d, dmin, scales, qs, qh, r, out):
    """Row r of a matrix of type `code` -> out float32 [cols]."""
    if code == Q4_K:
        row_q4_k(d, dmin, scales, qs, r, out)
    elif code == Q6_K:
        row_q6_k(d, scales, qs, qh, r, out)
    elif code == Q4_1:
        row_q4_1(d, dmin, qs, r, out)
    elif code == Q8_0:
        row_q8_0(d, qs, r, out)
    elif code == Q4_0:
        row_q4_0(d, qs, r, out)
    elif code == Q5_K:
        row_q5_k(d, dmin, scales, qs, qh, r, out)
    elif code == Q5_0:
        row_q5_0(d, qs, qh, r, out)
    elif code == Q5_1:
        row_q5_1(d, dmin, qs, qh, r, out)
    elif code == Q3_K:
        row_q3_k(d, scales, qs, qh, r, out)
    elif code == Q2_K:
        row_q2_k(d, dmin, scales, qs, r, out)
    elif code == F16:
        row_f16(qs, r, out)
    elif code == BF16:
        row_bf16(qs, r, out)
    else:
        row_f32(qs, r, out)


# --- integer dot products at few rows ---------------------------------------------------------------
# INT_DOT_MAX_STEPS's types multiply in int16 instead of float32: x is quantized to int16 per unit of columns
# (one float scale per unit, |error| <= scale / 2, ~1.5e-5 of the unit's largest value), each weight row is
# unpacked once to int16, and 32 products at a time are summed by one vpdpwssd (vpmaddwd + vpaddd without
# VNNI). Converting the weights to float32 instead took ~3x the instructions per weight.
#
#     dot(row, x) = sum over units u:  xscale[u] * sum over lanes:  wvec[u] * float(sum_j wq[j] xq[j])
#                 + sum over 32-column blocks k:  wmin[k] * xsum[k]         (Q4_K's and Q4_1's minimums)
#
# Each lane of the int32 sums keeps to one weight block, so the block's float scale multiplies its lanes:
# - K-quants: a unit is a 256-weight super-block, whose integer sub-block scales are already in wq: wvec[u]
#   is its float16 d in every lane.
# - 32-weight blocks (Q4_0, Q4_1, Q8_0): a unit is 2 blocks, whose columns wq and xq hold interleaved (see
#   interleaved_column) so that lanes 0..7 of its sums belong to the first block and 8..15 to the second:
#   the float conversion and scaling are paid once per 64 weights, not per 32-weight block (as a first
#   version did, which lost to the float kernel everywhere but at one row). 4-block units would halve that
#   again, but each operand then gathers 8-byte pieces of four blocks: measured 0.5-0.8x the float kernel on
#   AVX2, where two blocks' 32 contiguous bytes are loaded at once.
#
# int32 cannot overflow: |wq| <= 4096 (Q6_K: 32 * 128), and each of the 16 lanes sums 16 of a unit's 256
# products: at most 16 * 4096 * 32767 < 2^31 (2,147,418,112; hence 32767, not 32768). Q8_0's units: 4
# products per lane of |wq| <= 128.

XQ_MAX = np.float32(32767.0)
K_UNIT, BLOCK32_UNIT = 256, 64  # columns of a unit


@njit(inline="always", **COMPILE)
def interleaved_column(p):
    """The column at position p of a unit of two 32-weight blocks as wq and xq hold it: each 32-lane operand
    takes 16 columns of block 0, then the same 16 of block 1 (Q4's natural order: low nibbles, high nibbles)."""
    return ((p & 16) << 1) | ((p & 32) >> 1) | (p & 15)


@njit(inline="always", **COMPILE)
def unpack_q4_k(d, scales, qs, r, first, stop, wq, wvec):
    # Run s of 32 qs bytes: low nibbles are sub-block 2s, high nibbles 2s + 1 (see row_q4_k).
    nb = qs.shape[1]
    for b in range(first, stop):
        simd.store_f32(wvec, 16 * b, simd.splat_f32(f16(d[r, b])))
        for s in range(4):
            packed = simd.load_bytes(qs, (r * nb + b) * 128 + 32 * s)  # 32 bytes -> [32] int16
            simd.store_i16(wq, 256 * b + 64 * s, simd.mul_i16(simd.and_i16(packed, 15), scales[r, b, 2 * s]))
            simd.store_i16(wq, 256 * b + 64 * s + 32, simd.mul_i16(simd.shr_i16(packed, 4), scales[r, b, 2 * s + 1]))


@njit(inline="always", **COMPILE)
def unpack_q6_k(d, scales, qs, qh, r, first, stop, wq, wvec):
    # Weights 128 h + 32 p + j: nibble of qs bytes A (p = 0, 2) or B (p = 1, 3), two bits of qh (see row_q6_k).
    nb = qs.shape[1]
    for b in range(first, stop):
        simd.store_f32(wvec, 16 * b, simd.splat_f32(f16(d[r, b])))
        for h in range(2):
            low_at, high_at = (r * nb + b) * 128 + 64 * h, (r * nb + b) * 64 + 32 * h
            a, c, high = simd.load_bytes(qs, low_at), simd.load_bytes(qs, low_at + 32), simd.load_bytes(qh, high_at)
            quants = (
                simd.or_i16(simd.and_i16(a, 15), simd.shl_i16(simd.and_i16(high, 3), 4)),
                simd.or_i16(simd.and_i16(c, 15), simd.shl_i16(simd.and_i16(simd.shr_i16(high, 2), 3), 4)),
                simd.or_i16(simd.shr_i16(a, 4), simd.shl_i16(simd.and_i16(simd.shr_i16(high, 4), 3), 4)),
                simd.or_i16(simd.shr_i16(c, 4), simd.shl_i16(simd.shr_i16(high, 6), 4)),
            )
            for p in range(4):
                sub = 8 * h + 2 * p
                scaled = simd.mul_halves_i16(simd.sub_i16(quants[p], 32), np.int8(scales[r, b, sub]),
                                             np.int8(scales[r, b, sub + 1]))
                simd.store_i16(wq, 256 * b + 128 * h + 32 * p, scaled)


@njit(inline="always", **COMPILE)
def unpack_block32(code, d, qs, r, first, stop, wq, wvec):
    # Unit u is blocks 2u, 2u + 1 (see interleaved_column). Q4's 32 bytes of the two hold the first operand in
    # their low nibbles and the second in their high ones; Q8_0's operands are bytes 0..15 and 16..31 of each.
    nb, size = qs.shape[1], qs.shape[2]
    for u in range(first, stop):
        simd.store_f32(wvec, 16 * u, simd.spread2(f16(d[r, 2 * u]), f16(d[r, 2 * u + 1])))
        at = (r * nb + 2 * u) * size
        if code == Q8_0:
            for k in range(2):
                quants = simd.load_pieces_signed(qs, at + 16 * k, at + 16 * k + 8, at + 32 + 16 * k, at + 40 + 16 * k)
                simd.store_i16(wq, BLOCK32_UNIT * u + 32 * k, quants)
            continue
        packed = simd.load_bytes(qs, at)  # 32 bytes -> [32] int16
        low, high = simd.and_i16(packed, 15), simd.shr_i16(packed, 4)
        if code == Q4_0:
            low, high = simd.sub_i16(low, 8), simd.sub_i16(high, 8)
        simd.store_i16(wq, BLOCK32_UNIT * u, low)
        simd.store_i16(wq, BLOCK32_UNIT * u + 32, high)


@njit(inline="always", **COMPILE)
def unpack_int_units(code, d, scales, qs, qh, r, first, stop, wq, wvec):
    """Units first..stop - 1 of row r into wq (their columns) and wvec (their lanes)."""
    if code == Q4_K:
        unpack_q4_k(d, scales, qs, r, first, stop, wq, wvec)
    elif code == Q6_K:
        unpack_q6_k(d, scales, qs, qh, r, first, stop, wq, wvec)
    else:
        unpack_block32(code, d, qs, r, first, stop, wq, wvec)


@njit(inline="always", **COMPILE)
def unpack_minimums(code, dmin, scales, r, wmin):
    """Row r's minimums against xsum's lanes (see quantize_activations): Q4_K 16 lanes per super-block, its 8
    scales (against zeros) then its 8 minimums times -dmin; Q4_1 its blocks' dmin (the padding stays zero)."""
    nb = dmin.shape[1]
    if code == Q4_K:
        for b in range(nb):
            simd.store_f32(wmin, 16 * b, simd.times(UNSIGNED_FLOATS(scales, (r * nb + b) * 16), -f16(dmin[r, b])))
    elif code == Q4_1:
        for b in range(nb):
            wmin[b] = f16(dmin[r, b])


@njit(inline="always", **COMPILE)
def int_dot(wq, wvec, wmin, xq, xscale, xsum, t, unit, first, stop, partial, slot, last):
    """Unpacked units first..stop - 1 of a row . row t of the quantized x (see above), added to its partial sums
    (partial[slot, t], zero at the first units), which the last units sum into the result."""
    steps, cols = xq.shape
    acc = simd.load_f32(partial, (slot * steps + t) * 16)
    for u in range(first, stop):
        products = simd.zero_i32()
        for at in range(u * unit, min(cols, (u + 1) * unit), 32):
            products = simd.dot_pairs(products, simd.load_i16(wq, at), simd.load_i16(xq, t * cols + at))
        acc = simd.add_scaled(acc, products, simd.load_f32(wvec, 16 * u), xscale[t, u])
    if not last:
        simd.store_f32(partial, (slot * steps + t) * 16, acc)
        return F32_ZERO
    lanes = xsum.shape[1]
    for j in range(0, lanes, 16):
        acc = simd.add_multiple(acc, simd.load_f32(wmin, j), simd.load_f32(xsum, t * lanes + j))
    simd.store_f32(partial, (slot * steps + t) * 16, simd.zero_f32())
    return simd.lane_sum(acc)


@njit(inline="always", **COMPILE)
def int_dot_2x4(wq, wvec, wmin, xq, xscale, xsum, t, out, r, unit, first, stop, partial, slot, last):
    """int_dot of unpacked rows wq[0], wq[1] (rows r, r + 1 of W, partial's slots slot, slot + 1) with rows
    t..t+3 of x: each load of x serves two weight rows and each load of a weight row four rows of x (8
    accumulators stay in registers)."""
    steps, cols = xq.shape
    units = wvec.shape[1]
    at0, at1 = (slot * steps + t) * 16, ((slot + 1) * steps + t) * 16  # partial's flat positions
    a00, a01, a02, a03 = (simd.load_f32(partial, at0), simd.load_f32(partial, at0 + 16),
                          simd.load_f32(partial, at0 + 32), simd.load_f32(partial, at0 + 48))
    a10, a11, a12, a13 = (simd.load_f32(partial, at1), simd.load_f32(partial, at1 + 16),
                          simd.load_f32(partial, at1 + 32), simd.load_f32(partial, at1 + 48))
    for u in range(first, stop):
        p00 = p01 = p02 = p03 = p10 = p11 = p12 = p13 = simd.zero_i32()
        for at in range(u * unit, min(cols, (u + 1) * unit), 32):
            w0, w1 = simd.load_i16(wq, at), simd.load_i16(wq, cols + at)
            x0 = simd.load_i16(xq, t * cols + at)
            p00, p10 = simd.dot_pairs(p00, w0, x0), simd.dot_pairs(p10, w1, x0)
            x1 = simd.load_i16(xq, (t + 1) * cols + at)
            p01, p11 = simd.dot_pairs(p01, w0, x1), simd.dot_pairs(p11, w1, x1)
            x2 = simd.load_i16(xq, (t + 2) * cols + at)
            p02, p12 = simd.dot_pairs(p02, w0, x2), simd.dot_pairs(p12, w1, x2)
            x3 = simd.load_i16(xq, (t + 3) * cols + at)
            p03, p13 = simd.dot_pairs(p03, w0, x3), simd.dot_pairs(p13, w1, x3)
        s0, s1 = simd.load_f32(wvec, 16 * u), simd.load_f32(wvec, 16 * (units + u))
        a00, a10 = simd.add_scaled(a00, p00, s0, xscale[t, u]), simd.add_scaled(a10, p10, s1, xscale[t, u])
        a01, a11 = simd.add_scaled(a01, p01, s0, xscale[t + 1, u]), simd.add_scaled(a11, p11, s1, xscale[t + 1, u])
        a02, a12 = simd.add_scaled(a02, p02, s0, xscale[t + 2, u]), simd.add_scaled(a12, p12, s1, xscale[t + 2, u])
        a03, a13 = simd.add_scaled(a03, p03, s0, xscale[t + 3, u]), simd.add_scaled(a13, p13, s1, xscale[t + 3, u])
    if not last:
        simd.store_f32(partial, at0, a00), simd.store_f32(partial, at0 + 16, a01)
        simd.store_f32(partial, at0 + 32, a02), simd.store_f32(partial, at0 + 48, a03)
        simd.store_f32(partial, at1, a10), simd.store_f32(partial, at1 + 16, a11)
        simd.store_f32(partial, at1 + 32, a12), simd.store_f32(partial, at1 + 48, a13)
        return
    lanes = xsum.shape[1]
    for j in range(0, lanes, 16):
        m0, m1 = simd.load_f32(wmin, j), simd.load_f32(wmin, lanes + j)
        x0, x1 = simd.load_f32(xsum, t * lanes + j), simd.load_f32(xsum, (t + 1) * lanes + j)
        a00, a10, a01, a11 = (simd.add_multiple(a00, m0, x0), simd.add_multiple(a10, m1, x0),
                              simd.add_multiple(a01, m0, x1), simd.add_multiple(a11, m1, x1))
        x2, x3 = simd.load_f32(xsum, (t + 2) * lanes + j), simd.load_f32(xsum, (t + 3) * lanes + j)
        a02, a12, a03, a13 = (simd.add_multiple(a02, m0, x2), simd.add_multiple(a12, m1, x2),
                              simd.add_multiple(a03, m0, x3), simd.add_multiple(a13, m1, x3))
    for at in range(at0, at0 + 64, 16):
        simd.store_f32(partial, at, simd.zero_f32())
        simd.store_f32(partial, at - at0 + at1, simd.zero_f32())
    out[t, r], out[t + 1, r], out[t + 2, r], out[t + 3, r] = (
        simd.lane_sum(a00), simd.lane_sum(a01), simd.lane_sum(a02), simd.lane_sum(a03))
    out[t, r + 1], out[t + 1, r + 1], out[t + 2, r + 1], out[t + 3, r + 1] = (
        simd.lane_sum(a10), simd.lane_sum(a11), simd.lane_sum(a12), simd.lane_sum(a13))


@njit(fastmath=True, **COMPILE)
def quantize_activations(x, unit, interleaved, q4_k, xq, xscale, xsum):
    """x [T, cols] -> xq int16 [T, cols] with x ~ xq * xscale per unit of columns (in interleaved_column's
    order when `interleaved`), and xsum [T, lanes] (zeroed by the caller) the sums of x's 32-column blocks
    against the weights' minimums: in order (Q4_1), or in lanes 8..15 of each super-block's 16 (Q4_K, see
    unpack_q4_k); none when it has no lanes."""
    steps, cols = x.shape
    for t in range(steps):
        for u in range(xscale.shape[1]):
            start, stop = u * unit, min(cols, (u + 1) * unit)
            largest = F32_ZERO
            for j in range(start, stop):
                largest = max(largest, abs(x[t, j]))
            inverse = XQ_MAX / largest if largest > 0 else F32_ZERO
            xscale[t, u] = largest / XQ_MAX
            if interleaved:
                for p in range(stop - start):
                    xq[t, start + p] = np.int16(np.rint(x[t, start + interleaved_column(p)] * inverse))
            else:
                for j in range(start, stop):
                    xq[t, j] = np.int16(np.rint(x[t, j] * inverse))
        for k in range(cols // 32 if xsum.shape[1] else 0):
            total = F32_ZERO
            for j in range(32 * k, 32 * k + 32):
                total += x[t, j]
            xsum[t, 16 * (k // 8) + 8 + k % 8 if q4_k else k] = total


@njit(inline="always", **COMPILE)
def prefetch_rows(d, dmin, scales, qs, qh, first, stop):
    """Prefetch rows first..stop - 1 of W's arrays (see simd.prefetch)."""
    for array in (qs, qh, scales):
        row_bytes = array.size // array.shape[0]
        for at in range(first * row_bytes, stop * row_bytes, 64):
            simd.prefetch(array, at)
    for halves in (d, dmin):  # uint16: flat positions are 2 bytes
        row_bytes = 2 * halves.size // halves.shape[0]
        for at in range(first * row_bytes, stop * row_bytes, 64):
            simd.prefetch(halves, at // 2)


@njit(parallel=True, fastmath=True, **COMPILE)
def int_dot_kernel(code, d, dmin, scales, qs, qh, x, out, n_chunks):
    """out [T, rows] = x [T, cols] @ W.T for small T and the types of INT_DOT_MAX_STEPS: each row is unpacked
    once into an int16 scratch that stays in L1, then dotted with every row of the quantized x. Rows go in groups
    of ROW_GROUP_DOTS over column blocks of x (see X_BLOCK_BYTES), their partial sums kept between blocks, and
    the bytes of the rows a few ahead are prefetched (measured on Qwen's matrices at T = 8, one thread, cold:
    gate_up 3.58 -> 2.51 ms, down 2.30 -> 1.80 ms)."""
    rows, (steps, cols) = qs.shape[0], x.shape
    k_quant = code == Q4_K or code == Q6_K
    unit = K_UNIT if k_quant else BLOCK32_UNIT
    units = (cols + unit - 1) // unit
    # Lanes of the minimums' float dot (see quantize_activations), whole vectors: Q4_1's padded with zeros.
    min_lanes = cols // 16 if code == Q4_K else (cols // 32 + 15) // 16 * 16 if code == Q4_1 else 0
    xq = np.empty((steps, cols), np.int16)  # [T, cols]
    xscale = np.empty((steps, units), np.float32)  # [T, units]
    xsum = np.zeros((steps, min_lanes), np.float32)  # [T, min lanes]
    quantize_activations(x, unit, not k_quant, code == Q4_K, xq, xscale, xsum)
    # Columns per block: x's int16 rows of a block stay in L1 while a group of weight rows passes over them.
    block_units = max(1, X_BLOCK_BYTES // (2 * steps * unit))
    for chunk in prange(n_chunks):
        # Two rows unpacked at a time: from T = 4 on, int_dot_2x4 reads each of them once per four rows of x.
        wq = np.empty((2, cols), np.int16)  # [2, cols]
        wvec = np.empty((2, units, 16), np.float32)  # [2, units, lanes]
        wmin = np.zeros((2, min_lanes), np.float32)  # [2, min lanes]
        partial = np.zeros((ROW_GROUP_DOTS, steps, 16), np.float32)  # [group rows, T, lanes]: sums of past blocks
        stop = (chunk + 1) * rows // n_chunks
        for group in range(chunk * rows // n_chunks, stop, ROW_GROUP_DOTS):
            group_stop = min(stop, group + ROW_GROUP_DOTS)
            for first in range(0, units, block_units):
                last_units = min(units, first + block_units)
                last = last_units == units
                for r in range(group, group_stop, 2):
                    pair = min(2, group_stop - r)
                    ahead = min(r + PREFETCH_ROWS, stop)
                    if first == 0:
                        prefetch_rows(d, dmin, scales, qs, qh, ahead, min(ahead + 2, stop))
                    for k in range(pair):
                        unpack_int_units(code, d, scales, qs, qh, r + k, first, last_units, wq[k], wvec[k])
                        if last:
                            unpack_minimums(code, dmin, scales, r + k, wmin[k])
                    quads = steps - steps % 4 if pair == 2 else 0
                    for t in range(0, quads, 4):
                        int_dot_2x4(wq, wvec, wmin, xq, xscale, xsum, t, out, r, unit, first, last_units, partial,
                                    r - group, last)
                    for k in range(pair):
                        for t in range(quads, steps):
                            total = int_dot(wq[k], wvec[k], wmin[k], xq, xscale, xsum, t, unit, first, last_units,
                                            partial, r - group + k, last)
                            if last:
                                out[t, r + k] = total


# --- byte dot products (a few rows of x) ------------------------------------------------------------
# At a few rows of x little is reused across them, so the int16 scratch above is mostly cost: each weight is
# unpacked, stored, loaded again and multiplied 32 at a time. Here each 64 packed weight bytes are multiplied
# in registers as they are loaded, 64 products per instruction (vpdpbusd: unsigned weight bytes x signed
# activation bytes, lane i summing bytes 4i..4i+3). x is quantized per 32 columns to v = 256 * high + low
# (x ~ v * dx, |v| <= 32639), two int8 planes each dotted with the same weight bytes: one plane alone
# (llama.cpp's Q8 activations) moved SmolLM2's logits 2.1 against transformers' (tolerance 0.075: the
# hidden states' outlier columns leave the others a few levels of 255); two planes cost one more vpdpbusd
# per 64 weights and are finer than the int16 dots' x. The weights' bytes are used as they are stored:
#
# - Q4_1 (16-byte runs), Q4_K (32-byte runs): a 64-byte load holds 64 / run runs; its low nibbles are the
#   first `run` weights of each run's 2 * run, its high nibbles the next `run`. xq holds x in that order
#   (byte_order): per 128 columns, 64 bytes paired with the low nibbles, then 64 with the high ones.
# - Q6_K: 64 qs bytes (A then C) with their 32 qh bytes are 64 consecutive weights in their low nibbles and
#   the next 64 in their high ones: x's own order.
# - Q8_0: signed bytes; w ^ 0x80 = w + 128 is the unsigned operand and xcorr takes the 128 back.
#
# Q4_1 and Q8_0 (below): every 4 consecutive bytes of a load belong to one block, so each int32 lane of a dot has
# one weight scale and one x scale: lanes are converted to float and multiplied by the product of the two per 64
# weights (xlane holds each lane's dx). Q4_1's minimums use x's exact float sums per 32 columns. The K-quants
# have a section of their own (further below).
# int32 cannot overflow: a lane sums 4 products of |w| <= 255 and |v| <= 32639 (< 2^25), Q4_1's merged sums 8.
#
# A row of W is walked in units of 128 weights (two 64-byte operands, see unit_dot); each unit is unpacked
# once (nibbles, high bits, xor) and dotted with BYTE_DOT_GROUP rows of x, one float accumulator each, which
# stay in registers. Each row of x gets exactly the operations it gets alone, in the same order: a row's result is
# the same bits at any T.

XV_MAX = np.float32(127 * 256 + 127)  # the largest |v| whose two planes both fit int8
# Up to how many rows of x matmul multiplies each type by byte dots (the int16 or float kernels above that).
# Measured (one thread, hot, byte vs int16 vs float kernels alternating; then on the real matrices of SmolLM2 and
# Qwen2.5-Coder-1.5B, 2 threads: bench/RESULTS.md, 2026-11-30 "few-row byte dots"): at T = 2-3 byte dots are
# 1.5-2x the int16/float kernels for Q8_0/Q4_1; the K-quants' byte dots with integer sub-block scales (2026-12-01)
# 1.3-1.6x the int16 dots at T = 1-3 (T = 3 as a pair and a single row). From T = 4 on the int16 dots' 2x4
# tiles (two weight rows by four rows of x share every load) are faster, but for Q4_K at T = 4 (two pairs; on
# Qwen's matrices from DRAM, one thread, after the int16 dots' column blocks: gate_up 1.35 vs 1.62 ms, qkv 0.21 vs
# 0.24; Q6_K's down 1.59 vs 1.47: bench/RESULTS.md, tenth session). Byte tiles of four rows of x cost as much
# as pairs: per 64 weights and row of x they take 4 VNNI instructions (two planes of x, each scaled), the
# int16 dots 2, so above T = 4 no byte tile can catch up with them.
# Only with VNNI: elsewhere the portable widening multiply is unmeasured, and the int16 dots stay.
BYTE_DOT_MAX_STEPS = {Q.Q4_1: 3, Q.Q4_K: 4, Q.Q6_K: 3, Q.Q8_0: 3}
BYTE_DOT_TYPES = tuple(BYTE_DOT_MAX_STEPS)
# Rows of x dotted with each unpacked unit. Measured (one thread, hot, against single rows): groups of 2 or 3
# take 1.2-1.4x less time per row of x; groups of 4 spilled registers and gained nothing; byte dots stop at
# T <= 3 anyway (above); each group size is one more inlined copy of the loops (compile time: 3 was 2x 2's).
BYTE_DOT_GROUP = 2
BYTE_DOTS = simd.HAS_VNNI


@njit(inline="always", **COMPILE)
def byte_order(p, run):
    """The column (within its 128) that position p of a 128-byte group of xq holds (see above)."""
    q = p & 63
    return 2 * run * (q // run) + (run if p >= 64 else 0) + q % run


@njit(fastmath=True, **COMPILE)
def quantize_bytes(x, run, offset, xq, xlane, xcorr, xsum):
    """x [cols] -> xq int8 [2, padded]: v = 256 * xq[0] + xq[1] in byte_order with x ~ v * dx per 32 columns;
    xlane [padded / 4] the dx of each 4 positions' columns, xcorr [padded / 4] = -offset * their sum of v,
    xsum [cols / 32] x's sums; positions past cols are zero."""
    cols, padded = x.size, xq.shape[1]
    dx = np.empty(cols // 32, np.float32)
    inverse = np.empty(cols // 32, np.float32)
    for b in range(cols // 32):
        largest, total = F32_ZERO, F32_ZERO
        for j in range(32 * b, 32 * b + 32):
            largest = max(largest, abs(x[j]))
            total += x[j]
        dx[b], xsum[b] = largest / XV_MAX, total
        inverse[b] = XV_MAX / largest if largest > 0 else F32_ZERO
    for p in range(padded):
        column = p - p % 128 + byte_order(p % 128, run)
        v = np.int32(np.rint(x[column] * inverse[column // 32])) if column < cols else 0
        high = (v + 128) >> 8  # floor((v + 128) / 256): |high| <= 127 and -128 <= v - 256 * high <= 127
        xq[0, p], xq[1, p] = high, v - 256 * high
    for lane in range(xlane.size):
        column = 4 * lane - 4 * lane % 128 + byte_order(4 * lane % 128, run)
        xlane[lane] = dx[column // 32] if column < cols else F32_ZERO
        total = 0
        for p in range(4 * lane, 4 * lane + 4):
            total += 256 * np.int32(xq[0, p]) + xq[1, p]
        xcorr[lane] = -offset * total


@njit(inline="always", **COMPILE)
def plane_dots(acc, packed, xq, at):
    """acc + the byte dot of 64 weight bytes with 64 bytes of one of x's planes at flat position `at`."""
    return simd.dot_quads(acc, packed, simd.load_i8(xq, at))


@njit(inline="always", **COMPILE)
def unit_dot(acc, first, second, first_scale, second_scale, merged, corrected, xq, xlane, xcorr, t, c):
    """acc + row t of x . unit c of a weight row: 128 weights as two 64-byte operands (a load's low and high
    nibbles, or Q8_0's two loads), paired with x's positions 128c..128c+127 and lanes 32c..32c+31, with
    their weights' scales per lane. merged: both operands' lanes have the same scales (Q4_1), so their integer
    sums add up before the one conversion; corrected: the sums start from xcorr (Q8_0's offset).
    Each plane of x is dotted separately: v = 256 * high + low."""
    padded = xq.shape[2]
    high, low = 2 * t * padded + 128 * c, (2 * t + 1) * padded + 128 * c  # flat positions in xq [T, 2, padded]
    lane = t * (padded // 4) + 32 * c
    start = simd.load_i32(xcorr, lane) if corrected else simd.zero_i32()
    if merged:
        lows = plane_dots(plane_dots(start, first, xq, low), second, xq, low + 64)
        highs = plane_dots(plane_dots(simd.zero_i32(), first, xq, high), second, xq, high + 64)
        dots = simd.add_shifted(lows, highs, 8)
        return simd.add_products(acc, dots, simd.mul_f32(first_scale, simd.load_f32(xlane, lane)))
    dots = simd.add_shifted(plane_dots(start, first, xq, low), plane_dots(simd.zero_i32(), first, xq, high), 8)
    start = simd.load_i32(xcorr, lane + 16) if corrected else simd.zero_i32()
    second_dots = simd.add_shifted(plane_dots(start, second, xq, low + 64),
                                   plane_dots(simd.zero_i32(), second, xq, high + 64), 8)
    acc = simd.add_products(acc, dots, simd.mul_f32(first_scale, simd.load_f32(xlane, lane)))
    return simd.add_products(acc, second_dots, simd.mul_f32(second_scale, simd.load_f32(xlane, lane + 16)))


@njit(inline="always", **COMPILE)
def each_row(accs, group, first, second, first_scale, second_scale, merged, corrected, xq, xlane, xcorr, t, c):
    """unit_dot of one unpacked unit with rows t..t + group - 1 of x (group <= BYTE_DOT_GROUP), one accumulator
    each."""
    a0, a1 = accs
    a0 = unit_dot(a0, first, second, first_scale, second_scale, merged, corrected, xq, xlane, xcorr, t, c)
    if group > 1:
        a1 = unit_dot(a1, first, second, first_scale, second_scale, merged, corrected, xq, xlane, xcorr, t + 1, c)
    return a0, a1


@njit(inline="always", **COMPILE)
def row_minimum(code, dmin, r, xsum, t):
    """The minimums' part of row r . row t of x (Q4_1; 0 for Q8_0), from x's exact sums."""
    minimum = F32_ZERO
    if code == Q4_1:
        for b in range(dmin.shape[1]):
            minimum += f16(dmin[r, b]) * xsum[t, b]
    return minimum


@njit(inline="always", **COMPILE)
def byte_dot_rows(code, d, dmin, scales, qs, qh, r, xq, xlane, xcorr, xsum, t, group, out):
    """out[t:t + group, r] = rows t.. of x (quantized by quantize_bytes) . row r of W (group <= 2): each unit of
    the row is unpacked once for all of them. Each type's loop is written out: with the unpacking in a helper
    taking the arrays, numba's reference counting calls stayed in the loop (2-3x slower)."""
    nb = qs.shape[1]
    zero = simd.zero_f32()
    accs = (zero, zero)
    if code == Q4_1:
        # A unit is one load: 4 blocks of 16 bytes; an odd number of block pairs ends in half a load.
        row_bytes = nb * 16
        for c in range((nb + 3) // 4):
            b = 4 * c
            if b + 4 <= nb:
                packed = simd.load_i8(qs, r * row_bytes + 64 * c)
                scale = simd.spread4(f16(d[r, b]), f16(d[r, b + 1]), f16(d[r, b + 2]), f16(d[r, b + 3]))
            else:
                packed = simd.load_i8_half(qs, r * row_bytes + 64 * c)
                scale = simd.spread4(f16(d[r, b]), f16(d[r, b + 1]), F32_ZERO, F32_ZERO)
            accs = each_row(accs, group, simd.and_i8(packed, 15), simd.and_i8(simd.shr_i8(packed, 4), 15),
                            scale, scale, True, False, xq, xlane, xcorr, t, c)
    elif code == Q8_0:
        # A unit is two loads: 4 blocks of 32 bytes; an odd number of block pairs ends in one load.
        for c in range((nb + 3) // 4):
            at, b = (r * nb + 4 * c) * 32, 4 * c
            first = simd.xor_i8(simd.load_i8(qs, at), 0x80)
            first_scale = simd.spread2(f16(d[r, b]), f16(d[r, b + 1]))
            if b + 4 <= nb:
                second = simd.xor_i8(simd.load_i8(qs, at + 64), 0x80)
                second_scale = simd.spread2(f16(d[r, b + 2]), f16(d[r, b + 3]))
            else:  # zero bytes against x's zero padding
                second, second_scale = simd.zero_i8(), first_scale
            accs = each_row(accs, group, first, second, first_scale, second_scale, False, True, xq, xlane, xcorr, t, c)
    for k in range(group):
        out[t + k, r] = simd.lane_sum(accs[k]) + row_minimum(code, dmin, r, xsum, t + k)


@njit(parallel=True, fastmath=True, **COMPILE)
def byte_dot_kernel(code, d, dmin, scales, qs, qh, x, out, n_chunks):
    """out [T, rows] = x [T, cols] @ W.T for few T, Q4_1 and Q8_0, by byte dots (see above): each weight
    row's units are unpacked once per BYTE_DOT_GROUP rows of x."""
    rows, (steps, cols) = qs.shape[0], x.shape
    padded = (cols + 127) // 128 * 128
    run = 16 if code == Q4_1 else 64
    offset = 128 if code == Q8_0 else 0
    xq = np.empty((steps, 2, padded), np.int8)  # [T, 2 planes, padded]
    xlane = np.empty((steps, padded // 4), np.float32)  # [T, padded / 4]
    xcorr = np.empty((steps, padded // 4), np.int32)  # [T, padded / 4]
    xsum = np.empty((steps, cols // 32), np.float32)  # [T, cols / 32]
    for t in prange(steps):
        quantize_bytes(x[t], run, offset, xq[t], xlane[t], xcorr[t], xsum[t])
    pairs = steps - steps % BYTE_DOT_GROUP
    for chunk in prange(n_chunks):
        for r in range(chunk * rows // n_chunks, (chunk + 1) * rows // n_chunks):
            # The group is a constant at each call: with a variable one, the branches of each_row kept numba's
            # reference counting calls in the loop (2-3x slower).
            for t in range(0, pairs, BYTE_DOT_GROUP):
                byte_dot_rows(code, d, dmin, scales, qs, qh, r, xq, xlane, xcorr, xsum, t, BYTE_DOT_GROUP, out)
            if pairs < steps:
                byte_dot_rows(code, d, dmin, scales, qs, qh, r, xq, xlane, xcorr, xsum, pairs, 1, out)


# --- byte dots of the K-quants (Q4_K, Q6_K) -----------------------------------------------------------
# As above, but x's scale is one per 256-column super-block, the weights' own unit: the dots of all of a
# super-block's sub-blocks then share one float factor (its d times x's scale), so each sub-block's integer
# scale multiplies its lanes' sums in int32 and the float conversion is paid once per super-block (Q6_K: per
# half of it), not per 64 weights. Per 64 weight bytes and row of x: two vpdpbusd (x's two planes), each
# followed by a vpdpwssd that multiplies the lanes by their sub-block scales (times 256 for the high plane)
# into one int32 accumulator (simd.dot_scaled). x's coarser scale is the int16 dots' (one per 256 columns).
#
# The weights' offsets use x's exact float sums: Q4_K's minimums (-dmin * min * the sum of 32 columns) and
# Q6_K's -32 (-32 * d * scale * the sum of 16 columns) are 16 lanes per super-block (xextra: Q4_K's sums of
# 32 in lanes 8..15 against its mins, zeros against its scales in 0..7), one FMA into a second accumulator.
#
# int32 cannot overflow: a vpdpbusd lane sums 4 weights (<= 63) times a plane (|p| <= 128): |dot| <= 32256 < 2^15,
# as dot_scaled needs. Scaled, a lane of the accumulator sums its weights times v (|v| <= 32639) times the
# scale: Q4_K 16 weights * 15 * 63 * 32639 < 2^29 over a super-block; Q6_K 8 weights * 63 * 128 * 32639 <
# 2^31 (2,106,000,000): its accumulator is converted every half super-block.

K_BYTE_UNIT = 256  # columns per x scale
Q4_K_FIRST_SCALES = simd.scale_lanes([0] * 8 + [2] * 8, signed=False, shift=0)  # low nibbles: sub-blocks 4h, 4h + 2
Q4_K_FIRST_SCALES_HIGH = simd.scale_lanes([0] * 8 + [2] * 8, signed=False, shift=8)
Q4_K_SECOND_SCALES = simd.scale_lanes([1] * 8 + [3] * 8, signed=False, shift=0)  # high nibbles: 4h + 1, 4h + 3
Q4_K_SECOND_SCALES_HIGH = simd.scale_lanes([1] * 8 + [3] * 8, signed=False, shift=8)
Q6_K_FIRST_SCALES = simd.scale_lanes([i // 4 for i in range(16)], signed=True, shift=0)  # 16-weight sub-blocks 8h..
Q6_K_FIRST_SCALES_HIGH = simd.scale_lanes([i // 4 for i in range(16)], signed=True, shift=8)
Q6_K_SECOND_SCALES = simd.scale_lanes([4 + i // 4 for i in range(16)], signed=True, shift=0)  # 8h + 4..
Q6_K_SECOND_SCALES_HIGH = simd.scale_lanes([4 + i // 4 for i in range(16)], signed=True, shift=8)
Q6_K_FIRST_CRUMBS, Q6_K_SECOND_CRUMBS = simd.high_crumbs(0, 2), simd.high_crumbs(4, 6)
UNSIGNED_FLOATS, SIGNED_FLOATS = simd.byte_floats(False), simd.byte_floats(True)


@njit(fastmath=True, **COMPILE)
def quantize_k_bytes(x, run, q4_k, xq, xscale, xextra):
    """x [cols] -> xq int8 [2, cols]: v = 256 * xq[0] + xq[1] in byte_order with x ~ v * xscale per 256 columns;
    xextra [cols / 16] x's sums against the offsets' lanes (see above)."""
    cols = x.size
    inverse = np.empty(cols // K_BYTE_UNIT, np.float32)
    for b in range(cols // K_BYTE_UNIT):
        largest = F32_ZERO
        for j in range(K_BYTE_UNIT * b, K_BYTE_UNIT * (b + 1)):
            largest = max(largest, abs(x[j]))
        xscale[b] = largest / XV_MAX
        inverse[b] = XV_MAX / largest if largest > 0 else F32_ZERO
    for p in range(cols):
        column = p - p % 128 + byte_order(p % 128, run)
        v = np.int32(np.rint(x[column] * inverse[column // K_BYTE_UNIT]))
        high = (v + 128) >> 8  # as in quantize_bytes
        xq[0, p], xq[1, p] = high, v - 256 * high
    for k in range(cols // 16):
        total = F32_ZERO
        if q4_k:  # lane k % 16 of super-block k // 16: 0 against a scale (< 8), else the sum of sub-block k % 8
            if k % 16 >= 8:
                start = 256 * (k // 16) + 32 * (k % 8)
                for j in range(start, start + 32):
                    total += x[j]
        else:
            for j in range(16 * k, 16 * k + 16):
                total += x[j]
        xextra[k] = total


@njit(inline="always", **COMPILE)
def k_unpacked(code, scales, qs, qh, r, b, h):
    """Half h of super-block b of row r: its two 64-byte operands (64 weights each, see byte dots above) and
    the sub-block scales of their lanes, as they are and times 256."""
    nb = qs.shape[1]
    packed = simd.load_i8(qs, (r * nb + b) * 128 + 64 * h)
    scales_at = (r * nb + b) * 16
    if code == Q4_K:
        first, second = simd.and_i8(packed, 15), simd.and_i8(simd.shr_i8(packed, 4), 15)
        at = scales_at + 4 * h
        return (first, second, Q4_K_FIRST_SCALES(scales, at), Q4_K_FIRST_SCALES_HIGH(scales, at),
                Q4_K_SECOND_SCALES(scales, at), Q4_K_SECOND_SCALES_HIGH(scales, at))
    high_at = (r * nb + b) * 64 + 32 * h
    first = simd.or_i8(simd.and_i8(packed, 15), Q6_K_FIRST_CRUMBS(qh, high_at))
    second = simd.or_i8(simd.and_i8(simd.shr_i8(packed, 4), 15), Q6_K_SECOND_CRUMBS(qh, high_at))
    at = scales_at + 8 * h
    return (first, second, Q6_K_FIRST_SCALES(scales, at), Q6_K_FIRST_SCALES_HIGH(scales, at),
            Q6_K_SECOND_SCALES(scales, at), Q6_K_SECOND_SCALES_HIGH(scales, at))


@njit(inline="always", **COMPILE)
def k_offsets(code, d, dmin, scales, r, b):
    """The 16 lanes of super-block b of row r that xextra's sums multiply (see above)."""
    scales_at = (r * d.shape[1] + b) * 16
    if code == Q4_K:
        return simd.times(UNSIGNED_FLOATS(scales, scales_at), -f16(dmin[r, b]))
    return simd.times(SIGNED_FLOATS(scales, scales_at), np.float32(-32.0) * f16(d[r, b]))


@njit(inline="always", **COMPILE)
def k_operand_dot(acc, operand, scales, high_scales, x_high, x_low):
    """acc + 64 weight bytes . 64 bytes of x's two planes, each lane times its sub-block's scale in int32 (times
    256 against the high plane: v = 256 * high + low)."""
    acc = simd.dot_scaled(acc, simd.dot_quads(simd.zero_i32(), operand, x_high), high_scales)
    return simd.dot_scaled(acc, simd.dot_quads(simd.zero_i32(), operand, x_low), scales)


@njit(inline="always", **COMPILE)
def k_half_dots(acc, unpacked, xq, t, position):
    """acc + half a super-block (unpacked by k_unpacked) . row t of x's columns position..position + 127."""
    first, second, first_scales, first_high, second_scales, second_high = unpacked
    cols = xq.shape[2]
    high, low = 2 * t * cols + position, (2 * t + 1) * cols + position  # flat positions in xq [T, 2, cols]
    acc = k_operand_dot(acc, first, first_scales, first_high, simd.load_i8(xq, high), simd.load_i8(xq, low))
    return k_operand_dot(acc, second, second_scales, second_high, simd.load_i8(xq, high + 64),
                         simd.load_i8(xq, low + 64))


@njit(inline="always", **COMPILE)
def k_byte_dot_tile(code, d, dmin, scales, qs, qh, r, xq, xscale, xextra, t, x_rows, out):
    """out[t, r] and, for a pair (x_rows = 2), out[t + 1, r]: row r of W . rows t, t + 1 of x (quantized by
    quantize_k_bytes), each unpacked weight load serving both. A product gets the same operations in the same
    order alone and in a pair: a row's result is the same bits at any T. (Two rows of W per tile sharing each load
    of x, at T = 1, ran 1.7-2.8x slower on Qwen's matrices from DRAM than one; four rows of x per tile were no
    faster than pairs: bench/RESULTS.md, tenth session.)"""
    nb = qs.shape[1]
    lanes = xq.shape[2] // 16
    pair = x_rows == 2
    t1 = t + x_rows - 1  # the second product's row of x
    sum0 = sum1 = extra0 = extra1 = simd.zero_f32()
    for b in range(nb):
        offsets = k_offsets(code, d, dmin, scales, r, b)
        factor0, factor1 = f16(d[r, b]) * xscale[t, b], f16(d[r, b]) * xscale[t1, b]
        int0 = int1 = simd.zero_i32()
        for h in range(2):
            unpacked = k_unpacked(code, scales, qs, qh, r, b, h)
            int0 = k_half_dots(int0, unpacked, xq, t, 256 * b + 128 * h)
            if pair:
                int1 = k_half_dots(int1, unpacked, xq, t1, 256 * b + 128 * h)
            if code == Q6_K or h == 1:
                sum0 = simd.add_integers_times(sum0, int0, factor0)
                int0 = simd.zero_i32()
                if pair:
                    sum1 = simd.add_integers_times(sum1, int1, factor1)
                    int1 = simd.zero_i32()
        extra0 = simd.add_multiple(extra0, offsets, simd.load_f32(xextra, t * lanes + 16 * b))
        if pair:
            extra1 = simd.add_multiple(extra1, offsets, simd.load_f32(xextra, t1 * lanes + 16 * b))
    out[t, r] = simd.lane_sum(simd.add_f32(sum0, extra0))
    if pair:
        out[t1, r] = simd.lane_sum(simd.add_f32(sum1, extra1))


@njit(**COMPILE)
def quantized_k_rows(code, x):
    """x [T, cols] quantized for the K-quants' byte dots: xq [T, 2, cols], xscale [T, cols / 256], xextra
    [T, cols / 16] (see quantize_k_bytes)."""
    steps, cols = x.shape
    xq = np.empty((steps, 2, cols), np.int8)  # [T, 2 planes, cols]
    xscale = np.empty((steps, cols // K_BYTE_UNIT), np.float32)  # [T, cols / 256]
    xextra = np.empty((steps, cols // 16), np.float32)  # [T, cols / 16]
    for t in range(steps):
        quantize_k_bytes(x[t], 32 if code == Q4_K else 64, code == Q4_K, xq[t], xscale[t], xextra[t])
    return xq, xscale, xextra


@njit(parallel=True, fastmath=True, **COMPILE)
def k_byte_dots_few_kernel(code, d, dmin, scales, qs, qh, x, out, n_chunks):
    """out [T, rows] = x [T, cols] @ W.T for a few T, Q4_K and Q6_K, by byte dots (see above): each weight
    row's loads are unpacked once per two rows of x."""
    rows, steps = qs.shape[0], x.shape[0]
    xq, xscale, xextra = quantized_k_rows(code, x)
    pairs = steps - steps % 2
    for chunk in prange(n_chunks):
        for r in range(chunk * rows // n_chunks, (chunk + 1) * rows // n_chunks):
            for t in range(0, pairs, 2):
                k_byte_dot_tile(code, d, dmin, scales, qs, qh, r, xq, xscale, xextra, t, 2, out)
            if pairs < steps:
                k_byte_dot_tile(code, d, dmin, scales, qs, qh, r, xq, xscale, xextra, pairs, 1, out)

# --- drivers --------------------------------------------------------------------------------------


@njit(**COMPILE)
def dequantize_rows_kernel(code, d, dmin, scales, qs, qh, row_indices, out):
    """out[i] = row row_indices[i] of W, on the calling thread: prefill calls it from one thread per
    panel, and an embedding lookup is a few rows (~1 ms per 10M weights on one core)."""
    for i in range(row_indices.size):
        dequantize_row(code, d, dmin, scales, qs, qh, row_indices[i], out[i])  # [cols]


@njit(inline="always", **COMPILE)
def dots4(rows, x, t, out, i):
    """out[t, i:i+4] = rows [4, cols] . x[t]: the four dots share each load of x."""
    a0 = a1 = a2 = a3 = F32_ZERO
    for j in range(x.shape[1]):
        xj = x[t, j]
        a0 += rows[0, j] * xj
        a1 += rows[1, j] * xj
        a2 += rows[2, j] * xj
        a3 += rows[3, j] * xj
    out[t, i], out[t, i + 1], out[t, i + 2], out[t, i + 3] = a0, a1, a2, a3


@njit(parallel=True, fastmath=True, **COMPILE)
def few_rows_kernel(code, d, dmin, scales, qs, qh, x, out, n_chunks):
    """out [T, rows] = x [T, cols] @ W.T for small T.

    Each chunk of output rows is dequantized ROW_GROUP rows at a time into a scratch [ROW_GROUP, cols]
    that stays in L1/L2: each weight byte is read from memory once for all T rows of x, and each load
    of x serves ROW_GROUP rows.
    """
    rows, (steps, cols) = qs.shape[0], x.shape
    for chunk in prange(n_chunks):
        # A few chunks per thread balance uneven thread speeds; each allocates its scratch once.
        scratch = np.empty((ROW_GROUP, cols), np.float32)  # [ROW_GROUP, cols]
        start, stop = chunk * rows // n_chunks, (chunk + 1) * rows // n_chunks
        for i in range(start, stop, ROW_GROUP):
            group = min(ROW_GROUP, stop - i)
            for k in range(group):
                dequantize_row(code, d, dmin, scales, qs, qh, i + k, scratch[k])
            for t in range(steps):
                if group == ROW_GROUP:
                    dots4(scratch, x, t, out, i)
                    continue
                for k in range(group):
                    acc = F32_ZERO
                    for j in range(cols):
                        acc += scratch[k, j] * x[t, j]  # [cols] . [cols] -> scalar
                    out[t, i + k] = acc


def arrays(w):
    return TYPE_CODES[w.qtype], w.d, w.dmin, w.scales, w.qs, w.qh


def dequantize_rows_into(w, row_indices, out):
    """out[i] = row row_indices[i] of w, compiled (QuantMatrix.dequantize_rows/_panel land here)."""
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    dequantize_rows_kernel(*arrays(w), np.ascontiguousarray(row_indices, dtype=np.int64), out)


def matmul(x, w: QuantMatrix):
    """x @ W.T: float32 [T, cols] @ [cols, rows] -> float32 [T, rows]."""
    x = np.ascontiguousarray(x, dtype=np.float32)  # [T, cols]
    if x.ndim != 2 or x.shape[1] != w.cols:
        raise ValueError(f"x {x.shape} does not match a [{w.rows}, {w.cols}] matrix")
    if use_numpy_kernels():
        return reference_matmul(x, w)
    out = np.empty((x.shape[0], w.rows), np.float32)  # [T, rows]
    if x.shape[0] <= FEW_ROWS_MAX:
        # numba's thread count is per calling thread: a worker thread would start with the whole pool.
        if numba.get_num_threads() != THREADS:
            numba.set_num_threads(THREADS)
        if x.shape[0] <= byte_dot_steps(w):
            kernel = byte_dot_kernel if w.qtype not in (Q.Q4_K, Q.Q6_K) else k_byte_dots_few_kernel
        elif x.shape[0] <= int_dot_steps(w):
            kernel = int_dot_kernel
        else:
            kernel = few_rows_kernel
        kernel(*arrays(w), x, out, min(w.rows, 4 * THREADS))
        return out
    prefill_matmul(x, w, out)
    return out


def int_dot_steps(w):
    """Up to how many rows of x matmul multiplies w by integer dots (0: never)."""
    return INT_DOT_MAX_STEPS.get(w.qtype, 0) if w.cols % BLOCK32_UNIT == 0 else 0


def byte_dot_steps(w):
    """Up to how many rows of x matmul multiplies w by byte dots (0: never)."""
    if not BYTE_DOTS or w.qtype not in BYTE_DOT_TYPES or w.cols % BLOCK32_UNIT:
        return 0
    return BYTE_DOT_MAX_STEPS[w.qtype]


def prefill_matmul(x, w, out):
    """out [T, rows] = x [T, cols] @ W.T for large T: panels of rows are dequantized, then multiplied by
    BLAS sgemm, one panel per task on THREADS Python threads, BLAS itself on one thread each.

    Not BLAS's own threads: after each call OpenBLAS's workers spin for ~0.1 s waiting for more work,
    which would starve the numba threads of the decode steps that follow (measured: 12 ms instead of
    1 ms per 8960 x 1536 matmul). Python threads run this in parallel: the compiled dequantizer and
    numpy's matmul both release the GIL.
    """
    # As many panels as fit PANEL_BYTES, rounded up to a multiple of the threads so that every thread gets the same
    # work: SmolLM2's matrices (1-2 panels each) otherwise left one of two threads idle.
    n_panels = -(-(4 * w.rows * w.cols) // (PANEL_BYTES * THREADS)) * THREADS
    panel_rows = max(16, -(-w.rows // n_panels))

    def multiply_panel(start):
        stop = min(w.rows, start + panel_rows)
        panel = getattr(PANEL_BUFFERS, "panel", None)
        if panel is None or panel.size < panel_rows * w.cols:
            panel = PANEL_BUFFERS.panel = np.empty(panel_rows * w.cols, np.float32)  # reused by this thread
        panel = panel[: (stop - start) * w.cols].reshape(stop - start, w.cols)  # [P, cols]
        dequantize_rows_into(w, np.arange(start, stop), panel)
        np.matmul(x, panel.T, out=out[:, start:stop])  # [T, cols] @ [cols, P] -> [T, P]

    list(PANEL_POOL.map(multiply_panel, range(0, w.rows, panel_rows)))


# --- threads --------------------------------------------------------------------------------------


def threads_from_env():
    value = os.environ.get("KOTATSU_THREADS", "").strip()
    if not value:
        return len(os.sched_getaffinity(0))
    if not value.isdigit() or not 1 <= int(value) <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"KOTATSU_THREADS: expected 1..{numba.config.NUMBA_NUM_THREADS}, got {value!r}")
    return int(value)


THREADS = threads_from_env()


PANEL_BUFFERS = threading.local()  # .panel: each prefill thread's float32 panel buffer
PANEL_POOL = None


def set_threads(n):
    """Use n threads in the kernels and n single-threaded BLAS calls at a time (the panel threads), so the two never
    oversubscribe the cores. BLAS keeps one thread of its own for every call, the engine's small ones too
    (attention, norms): its idle workers would spin ~0.1 s after each call and starve the decode kernels."""
    global THREADS, PANEL_POOL
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"threads: expected 1..{numba.config.NUMBA_NUM_THREADS}, got {n}")
    THREADS = n
    ThreadpoolController().select(user_api="blas").limit(limits=1)
    # Not numba.set_num_threads here: it starts numba's threads (GNU OpenMP), and a process forked after that (a
    # Celery prefork worker, which imports this module before it forks) is killed by numba on its first
    # parallel kernel. matmul sets the count in the thread that computes, on its first call.
    if PANEL_POOL is not None:
        PANEL_POOL.shutdown(wait=False)
    PANEL_POOL = ThreadPoolExecutor(n, thread_name_prefix="kotatsu-panel")


def warm_up():
    """Compile (or load from the disk cache) every kernel, running each quant type once; seconds taken."""
    started = time.perf_counter()
    for qtype in SUPPORTED_TYPES:
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        rows, cols = 3, 256
        w = QuantMatrix.from_gguf_bytes(qtype, (rows, cols), np.zeros(rows * cols // block_size * type_size, np.uint8))
        for steps in (1, FEW_ROWS_MAX + 1):
            matmul(np.zeros((steps, cols), np.float32), w)  # [T, cols] @ [cols, rows]
    return time.perf_counter() - started


set_threads(THREADS)
