"""Short SIMD vectors as numba values, for the integer-dot kernels of inference.core.kernels.

numba has no vector type, and its loops over a block's 16 or 32 weights stay scalar (LLVM cannot prove the
arrays do not alias). So the few vector steps the kernels need are numba intrinsics written in plain LLVM
vector IR, over three vector types that live in registers as local variables of compiled code:

    I8x64    <64 x i8>    packed weight bytes and int8 activations (the byte dots)
    I16x32   <32 x i16>   unpacked weights (small integers) and int16 activations
    I32x16   <16 x i32>   integer dot products: lane i sums the products of lanes 2i and 2i+1
    F32x16   <16 x float> float accumulators

The IR is target-neutral but for `dot_pairs` and `dot_quads`: AVX-512 VNNI's vpdpwssd / vpdpbusd where the CPU
has it, else LLVM's pattern for a widening multiply-add (vpmaddwd + vpaddd on x86, smull/smlal pairs on AArch64).
The rest are plain shifts, masks, shuffles and conversions.
"""

import llvmlite.binding as llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.errors import TypingError
from numba.extending import intrinsic, models, register_model

I8, I16, I32, F32_IR = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.FloatType()


class Vector(types.Type):
    def __init__(self, element, lanes):
        self.element, self.lanes = element, lanes
        super().__init__(name=f"Vector<{lanes} x {element}>")

    @property
    def ir_type(self):
        return ir.VectorType({"i8": I8, "i16": I16, "i32": I32, "f32": F32_IR}[self.element], self.lanes)


@register_model(Vector)
class VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, fe_type.ir_type)


I8x64, I16x32, I32x16, F32x16 = Vector("i8", 64), Vector("i16", 32), Vector("i32", 16), Vector("f32", 16)


def splat(builder, value, vector_type):
    """A vector with every lane = value (a scalar of the vector's element type)."""
    one = builder.insert_element(ir.Constant(vector_type, ir.Undefined), value, ir.Constant(I32, 0))
    lane_zero = ir.Constant(ir.VectorType(I32, vector_type.count), [0] * vector_type.count)
    return builder.shuffle_vector(one, ir.Constant(vector_type, ir.Undefined), lane_zero)


def element_pointer(context, builder, array_type, array, index, element):
    """Pointer to array's flat element `index`, as a pointer to `element` (the array must be C-contiguous)."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index], inbounds=True), element.as_pointer())


def contiguous(*arrays):
    if not all(isinstance(a, types.Array) and a.layout == "C" for a in arrays):
        raise TypingError("simd loads and stores index C-contiguous arrays flat")


# --- loads and stores ---------------------------------------------------------------------------------


@intrinsic
def load_bytes(typingctx, array, at):
    """32 bytes from array's flat byte `at`, zero-extended to int16."""
    contiguous(array)

    def codegen(context, builder, signature, args):
        raw = builder.load(element_pointer(context, builder, signature.args[0], args[0], args[1],
                                           ir.VectorType(I8, 32)), align=1)
        return builder.zext(raw, I16x32.ir_type)

    return I16x32(array, types.intp), codegen


def vector_loader(vector):
    @intrinsic
    def load(typingctx, array, at):
        contiguous(array)

        def codegen(context, builder, signature, args):
            return builder.load(element_pointer(context, builder, signature.args[0], args[0], args[1],
                                                vector.ir_type), align=4)

        return vector(array, types.intp), codegen

    return load


def vector_storer(vector):
    @intrinsic
    def store(typingctx, array, at, value):
        contiguous(array)

        def codegen(context, builder, signature, args):
            builder.store(args[2], element_pointer(context, builder, signature.args[0], args[0], args[1],
                                                   vector.ir_type), align=4)
            return context.get_dummy_value()

        return types.void(array, types.intp, vector), codegen

    return store


@intrinsic
def load_pieces_signed(typingctx, array, at0, at1, at2, at3):
    """Four runs of 8 bytes from array's flat bytes at0..at3, back to back, sign-extended to int16."""
    contiguous(array)

    def codegen(context, builder, signature, args):
        pieces = ir.Constant(ir.VectorType(ir.IntType(64), 4), ir.Undefined)
        for i, at in enumerate(args[1:]):
            piece = builder.load(element_pointer(context, builder, signature.args[0], args[0], at, ir.IntType(64)),
                                 align=1)
            pieces = builder.insert_element(pieces, piece, ir.Constant(I32, i))
        return builder.sext(builder.bitcast(pieces, ir.VectorType(I8, 32)), I16x32.ir_type)

    return I16x32(array, types.intp, types.intp, types.intp, types.intp), codegen


@intrinsic
def prefetch(typingctx, array, at):
    """Ask the CPU to bring the cache line holding array's flat byte `at` into its caches (llvm.prefetch: a hint
    that never faults), so that a row's bytes arrive from DRAM while the rows before it are computed."""
    contiguous(array)

    def codegen(context, builder, signature, args):
        pointer = element_pointer(context, builder, signature.args[0], args[0], args[1], I8)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [I8.as_pointer(), I32, I32, I32]), "llvm.prefetch.p0i8",
        )
        builder.call(function, [pointer, ir.Constant(I32, 0), ir.Constant(I32, 3), ir.Constant(I32, 1)])
        return context.get_dummy_value()

    return types.void(array, types.intp), codegen


load_i16 = vector_loader(I16x32)
store_i16 = vector_storer(I16x32)
load_f32 = vector_loader(F32x16)
store_f32 = vector_storer(F32x16)
load_i32 = vector_loader(I32x16)


@intrinsic
def load_i8(typingctx, array, at):
    """64 bytes from array's flat byte `at`."""
    contiguous(array)

    def codegen(context, builder, signature, args):
        return builder.load(element_pointer(context, builder, signature.args[0], args[0], args[1], I8x64.ir_type),
                            align=1)

    return I8x64(array, types.intp), codegen


@intrinsic
def load_i8_half(typingctx, array, at):
    """32 bytes from array's flat byte `at` in lanes 0..31, zeros in 32..63 (a row's last half unit)."""
    contiguous(array)

    def codegen(context, builder, signature, args):
        half = builder.load(element_pointer(context, builder, signature.args[0], args[0], args[1],
                                            ir.VectorType(I8, 32)), align=1)
        zeros = ir.Constant(ir.VectorType(I8, 32), [0] * 32)
        return builder.shuffle_vector(half, zeros, ir.Constant(ir.VectorType(I32, 64), list(range(64))))

    return I8x64(array, types.intp), codegen


# --- int16 lane arithmetic (the scalar is truncated to int16) ------------------------------------------


def lanewise(operation, vector_type=I16x32):
    @intrinsic
    def op(typingctx, vector, scalar):
        def codegen(context, builder, signature, args):
            value = builder.trunc(args[1], vector_type.ir_type.element)
            return getattr(builder, operation)(args[0], splat(builder, value, vector_type.ir_type))

        return vector_type(vector_type, types.int64), codegen

    return op


and_i16, shr_i16, shl_i16, sub_i16, mul_i16 = (lanewise(o) for o in ("and_", "lshr", "shl", "sub", "mul"))
and_i8, shr_i8, shl_i8, xor_i8 = (lanewise(o, I8x64) for o in ("and_", "lshr", "shl", "xor"))


def either(vector_type):
    @intrinsic
    def or_(typingctx, a, b):
        def codegen(context, builder, signature, args):
            return builder.or_(args[0], args[1])

        return vector_type(vector_type, vector_type), codegen

    return or_


or_i16, or_i8 = either(I16x32), either(I8x64)


@intrinsic
def mul_halves_i16(typingctx, vector, low, high):
    """Lanes 0..15 times `low`, lanes 16..31 times `high` (two sub-blocks of 16 with their own scales)."""

    def codegen(context, builder, signature, args):
        lows = splat(builder, builder.trunc(args[1], I16), ir.VectorType(I16, 16))
        highs = splat(builder, builder.trunc(args[2], I16), ir.VectorType(I16, 16))
        both = builder.shuffle_vector(lows, highs, ir.Constant(ir.VectorType(I32, 32), list(range(32))))
        return builder.mul(args[0], both)

    return I16x32(I16x32, types.int64, types.int64), codegen


# --- dot products and float accumulation --------------------------------------------------------------


@intrinsic
def zero_i32(typingctx):
    def codegen(context, builder, signature, args):
        return ir.Constant(I32x16.ir_type, [0] * 16)

    return I32x16(), codegen


@intrinsic
def zero_i8(typingctx):
    def codegen(context, builder, signature, args):
        return ir.Constant(I8x64.ir_type, [0] * 64)

    return I8x64(), codegen


@intrinsic
def zero_f32(typingctx):
    def codegen(context, builder, signature, args):
        return ir.Constant(F32x16.ir_type, [0.0] * 16)

    return F32x16(), codegen


# LLVM does not fuse vpmaddwd + vpaddd into AVX-512 VNNI's vpdpwssd by itself (measured: 8 vpmaddwd and 8 vpaddd
# per 256 weights), so where the CPU has it, it is called by name; elsewhere the portable pattern below.
HAS_VNNI = llvm.get_host_cpu_features().get("avx512vnni", False)


@intrinsic
def dot_pairs(typingctx, acc, a, b):
    """acc[i] + a[2i] * b[2i] + a[2i+1] * b[2i+1] in int32 (vpdpwssd)."""

    def codegen(context, builder, signature, args):
        if HAS_VNNI:
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(I32x16.ir_type, [I32x16.ir_type, I16x32.ir_type, I16x32.ir_type]),
                "llvm.x86.avx512.vpdpwssd.512",
            )
            return builder.call(function, args)
        wide = ir.VectorType(I32, 32)
        products = builder.mul(builder.sext(args[1], wide), builder.sext(args[2], wide))  # <32 x i32>
        even = builder.shuffle_vector(products, ir.Constant(wide, ir.Undefined),
                                      ir.Constant(ir.VectorType(I32, 16), list(range(0, 32, 2))))
        odd = builder.shuffle_vector(products, ir.Constant(wide, ir.Undefined),
                                     ir.Constant(ir.VectorType(I32, 16), list(range(1, 32, 2))))
        return builder.add(args[0], builder.add(even, odd))

    return I32x16(I32x16, I16x32, I16x32), codegen


@intrinsic
def dot_quads(typingctx, acc, a, b):
    """acc[i] + a[4i] * b[4i] + ... + a[4i+3] * b[4i+3] in int32, a's bytes unsigned and b's signed (vpdpbusd)."""

    def codegen(context, builder, signature, args):
        if HAS_VNNI:
            as_i32 = [builder.bitcast(v, I32x16.ir_type) for v in args[1:]]
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(I32x16.ir_type, [I32x16.ir_type] * 3), "llvm.x86.avx512.vpdpbusd.512",
            )
            return builder.call(function, [args[0], *as_i32])
        wide = ir.VectorType(I32, 64)
        products = builder.mul(builder.zext(args[1], wide), builder.sext(args[2], wide))  # <64 x i32>
        total = args[0]
        for k in range(4):
            part = builder.shuffle_vector(products, ir.Constant(wide, ir.Undefined),
                                          ir.Constant(ir.VectorType(I32, 16), list(range(k, 64, 4))))
            total = builder.add(total, part)
        return total

    return I32x16(I32x16, I8x64, I8x64), codegen


@intrinsic
def add_shifted(typingctx, low, high, shift):
    """low + (high << shift) in int32, lane by lane."""

    def codegen(context, builder, signature, args):
        shift_lanes = splat(builder, builder.trunc(args[2], I32), I32x16.ir_type)
        return builder.add(args[0], builder.shl(args[1], shift_lanes))

    return I32x16(I32x16, I32x16, types.int64), codegen


def spread_codegen(context, builder, signature, args):
    """F32x16 whose lanes hold each of the scalar args 16 / len(args) times in a row."""
    count = len(args)
    values = ir.Constant(ir.VectorType(F32_IR, count), ir.Undefined)
    for i, value in enumerate(args):
        values = builder.insert_element(values, value, ir.Constant(I32, i))
    lanes = ir.Constant(ir.VectorType(I32, 16), [i * count // 16 for i in range(16)])
    return builder.shuffle_vector(values, ir.Constant(ir.VectorType(F32_IR, count), ir.Undefined), lanes)


@intrinsic
def spread2(typingctx, a, b):
    """[a] * 8 + [b] * 8 (the scales of the two blocks or sub-blocks whose weights a byte-dot's lanes sum)."""
    return F32x16(types.float32, types.float32), spread_codegen


@intrinsic
def spread4(typingctx, a, b, c, d):
    """[a] * 4 + [b] * 4 + [c] * 4 + [d] * 4."""
    return F32x16(types.float32, types.float32, types.float32, types.float32), spread_codegen


@intrinsic
def mul_f32(typingctx, a, b):
    def codegen(context, builder, signature, args):
        return builder.fmul(args[0], args[1])

    return F32x16(F32x16, F32x16), codegen


@intrinsic
def add_products(typingctx, acc, integers, scales):
    """acc + float(integers) * scales, lane by lane."""

    def codegen(context, builder, signature, args):
        values = builder.sitofp(args[1], F32x16.ir_type)
        return builder.fadd(args[0], builder.fmul(values, args[2], flags=("contract",)), flags=("contract",))

    return F32x16(F32x16, I32x16, F32x16), codegen


@intrinsic
def add_scaled(typingctx, acc, integers, scales, factor):
    """acc + float(integers) * (scales * factor), lane by lane."""

    def codegen(context, builder, signature, args):
        values = builder.sitofp(args[1], F32x16.ir_type)
        scaled = builder.fmul(args[2], splat(builder, args[3], F32x16.ir_type))
        # "contract": LLVM may fuse the multiply and the add into one FMA.
        return builder.fadd(args[0], builder.fmul(values, scaled, flags=("contract",)), flags=("contract",))

    return F32x16(F32x16, I32x16, F32x16, types.float32), codegen


@intrinsic
def lane_sum(typingctx, vector):
    """The sum of the 16 lanes (a pairwise tree: one shuffle and one add per halving)."""

    def codegen(context, builder, signature, args):
        value, lanes = args[0], 16
        while lanes > 1:
            lanes //= 2
            mask = ir.Constant(ir.VectorType(I32, lanes), list(range(lanes)))
            upper = ir.Constant(ir.VectorType(I32, lanes), list(range(lanes, 2 * lanes)))
            low, high = builder.shuffle_vector(value, value, mask), builder.shuffle_vector(value, value, upper)
            value = builder.fadd(low, high)
        return builder.extract_element(value, ir.Constant(I32, 0))

    return types.float32(F32x16), codegen


# --- the K-quants' byte dots: sub-block scales multiplied in int32 ------------------------------------


@intrinsic
def dot_scaled(typingctx, acc, dots, scales):
    """acc + dots * scales in int32, lane by lane, for |dots| < 2^15 and scales built by scale_lanes (each lane
    an int16 in its low half, zeros above): vpdpwssd multiplies the low halves and adds 0 * the high ones."""

    def codegen(context, builder, signature, args):
        if HAS_VNNI:
            as_i16 = [builder.bitcast(v, I16x32.ir_type) for v in args[1:]]
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(I32x16.ir_type, [I32x16.ir_type, I16x32.ir_type, I16x32.ir_type]),
                "llvm.x86.avx512.vpdpwssd.512",
            )
            return builder.call(function, [args[0], *as_i16])
        lows = [builder.sext(builder.trunc(v, ir.VectorType(I16, 16)), I32x16.ir_type) for v in args[1:]]
        return builder.add(args[0], builder.mul(*lows))

    return I32x16(I32x16, I32x16, I32x16), codegen


def scale_lanes(pattern, signed, shift):
    """An intrinsic (array, at) -> I32x16 whose lane i is the int16 (array[at + pattern[i]] << shift) (the byte
    sign-extended when signed; shift 0 or 8) in its low half: the sub-block scales of a byte dot's lanes, for
    dot_scaled. Built as one byte shuffle (vpermb), plus a shift for signed bytes unshifted."""
    loaded = 4 if max(pattern) < 4 else 8  # bytes read: never past the block's scales
    # Each lane's scale byte goes to its byte 1 (shift 8, or signed: shifted back down arithmetically), else 0.
    at_byte = 1 if signed or shift else 0
    zero = loaded  # the first element of the all-zero second operand
    mask = [pattern[k // 4] if k % 4 == at_byte else zero for k in range(64)]

    @intrinsic
    def lanes(typingctx, array, at):
        contiguous(array)

        def codegen(context, builder, signature, args):
            raw = builder.load(element_pointer(context, builder, signature.args[0], args[0], args[1],
                                               ir.VectorType(I8, loaded)), align=1)
            spread = builder.shuffle_vector(raw, ir.Constant(raw.type, [0] * loaded),
                                            ir.Constant(ir.VectorType(I32, 64), mask))
            if signed and not shift:
                words = builder.ashr(builder.bitcast(spread, I16x32.ir_type), ir.Constant(I16x32.ir_type, [8] * 32))
                return builder.bitcast(words, I32x16.ir_type)
            return builder.bitcast(spread, I32x16.ir_type)

        return I32x16(array, types.intp), codegen

    return lanes


def high_crumbs(first_shift, second_shift):
    """An intrinsic (qh, at) -> I8x64: Q6_K's top two bits of 64 weights at bits 4..5, from 32 qh bytes: lanes
    0..31 take bits first_shift.. of bytes at..at + 31, lanes 32..63 bits second_shift.. of the same bytes."""

    @intrinsic
    def crumbs(typingctx, array, at):
        contiguous(array)

        def codegen(context, builder, signature, args):
            half = builder.load(element_pointer(context, builder, signature.args[0], args[0], args[1],
                                                ir.VectorType(I8, 32)), align=1)
            both = builder.shuffle_vector(half, half, ir.Constant(ir.VectorType(I32, 64), list(range(32)) * 2))
            # Shifted as 16-bit words (x86 has no byte shifts): the mask drops what crossed from the other byte.
            words = builder.bitcast(both, I16x32.ir_type)
            words = builder.lshr(words, ir.Constant(I16x32.ir_type, [first_shift] * 16 + [second_shift] * 16))
            words = builder.and_(words, ir.Constant(I16x32.ir_type, [0x0303] * 32))
            words = builder.shl(words, ir.Constant(I16x32.ir_type, [4] * 32))
            return builder.bitcast(words, I8x64.ir_type)

        return I8x64(array, types.intp), codegen

    return crumbs


def byte_floats(signed):
    """An intrinsic (array, at) -> F32x16: 16 bytes from array's flat byte `at` as floats."""

    @intrinsic
    def floats(typingctx, array, at):
        contiguous(array)

        def codegen(context, builder, signature, args):
            raw = builder.load(element_pointer(context, builder, signature.args[0], args[0], args[1],
                                               ir.VectorType(I8, 16)), align=1)
            wide = (builder.sext if signed else builder.zext)(raw, I32x16.ir_type)
            return builder.sitofp(wide, F32x16.ir_type)

        return F32x16(array, types.intp), codegen

    return floats


@intrinsic
def splat_f32(typingctx, value):
    """A vector with every lane = value."""

    def codegen(context, builder, signature, args):
        return splat(builder, args[0], F32x16.ir_type)

    return F32x16(types.float32), codegen


@intrinsic
def times(typingctx, vector, factor):
    """vector * factor, lane by lane."""

    def codegen(context, builder, signature, args):
        return builder.fmul(args[0], splat(builder, args[1], F32x16.ir_type))

    return F32x16(F32x16, types.float32), codegen


@intrinsic
def add_f32(typingctx, a, b):
    def codegen(context, builder, signature, args):
        return builder.fadd(args[0], args[1])

    return F32x16(F32x16, F32x16), codegen


@intrinsic
def add_multiple(typingctx, acc, a, b):
    """acc + a * b, lane by lane (one FMA)."""

    def codegen(context, builder, signature, args):
        return builder.fadd(args[0], builder.fmul(args[1], args[2], flags=("contract",)), flags=("contract",))

    return F32x16(F32x16, F32x16, F32x16), codegen


@intrinsic
def add_integers_times(typingctx, acc, integers, factor):
    """acc + float(integers) * factor, lane by lane."""

    def codegen(context, builder, signature, args):
        values = builder.sitofp(args[1], F32x16.ir_type)
        scaled = builder.fmul(values, splat(builder, args[2], F32x16.ir_type), flags=("contract",))
        return builder.fadd(args[0], scaled, flags=("contract",))

    return F32x16(F32x16, I32x16, types.float32), codegen
