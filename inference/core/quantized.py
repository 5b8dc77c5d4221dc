"""Weight matrices that stay quantized in memory, and the pure-numpy reference that reads them.

A `QuantMatrix` holds one GGUF weight tensor [rows = out_features, cols = in_features] as its blocks,
split at construction into a few contiguous arrays that the compiled kernels (inference.core.kernels)
stream row by row. Every quant type is held in the same five arrays, so one compiled kernel signature
serves all types:

    d       uint16 [rows, nb]        the block scale, as float16 bits (F16/BF16/F32: [rows, 0])
    dmin    uint16 [rows, nb]        the block min as float16 bits (Q4_1/Q5_1 m, Q2_K/Q4_K/Q5_K dmin)
    scales  uint8  [rows, nb, S]     sub-block scales of the K-quants, 6-bit fields already unpacked
    qs      uint8  [rows, nb, Q]     the low bits of the quants, in GGUF's order (F16/BF16/F32: raw row bytes)
    qh      uint8  [rows, nb, H]     the high bits (Q5_0/Q5_1/Q5_K/Q6_K) or Q3_K's hmask

Scales stay float16 bits rather than float32: for 32-weight blocks two extra bytes per block would add
10-20 % to the bytes a decode step streams. Unused arrays have a zero-sized last axis.

Every value a QuantMatrix represents is exactly what gguf.quants.dequantize gives for the original bytes:
each formula below multiplies a float16 scale by small integers (exact in float32) and rounds once.
"""

import os
from dataclasses import dataclass

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import Q4_K as GGUF_Q4_K

Q = GGMLQuantizationType
SUPPORTED_TYPES = (
    Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.F16, Q.BF16, Q.F32,
)
# Bytes repacked per call: bounds the temporaries of from_gguf_bytes whatever the matrix size.
REPACK_CHUNK_BYTES = 8 << 20
# Rows the numpy reference dequantizes at once in reference_matmul: bounds its float32 temporaries.
REFERENCE_PANEL_ROWS = 256
NIBBLE_SHIFTS = np.array([0, 4], dtype=np.uint8)


@dataclass(frozen=True, eq=False)
class QuantMatrix:
    qtype: GGMLQuantizationType
    shape: tuple[int, int]  # (rows, cols) = (out_features, in_features)
    d: np.ndarray
    dmin: np.ndarray
    scales: np.ndarray
    qs: np.ndarray
    qh: np.ndarray

    @classmethod
    def from_gguf_bytes(cls, qtype, shape, raw):
        """The matrix of GGUF tensor bytes `raw` (uint8, any shape, rows of blocks back to back)."""
        qtype = GGMLQuantizationType(qtype)
        if qtype not in SUPPORTED_TYPES:
            raise ValueError(f"unsupported quant type {qtype.name}")
        rows, cols = (int(n) for n in shape)
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        if cols % block_size:
            raise ValueError(f"{qtype.name}: {cols} columns is not a multiple of the block size {block_size}")
        raw = np.ascontiguousarray(raw).view(np.uint8).reshape(-1)
        nb = cols // block_size
        if raw.size != rows * nb * type_size:
            raise ValueError(f"{qtype.name} [{rows}, {cols}] takes {rows * nb * type_size} bytes, got {raw.size}")
        blocks = raw.reshape(rows, nb, type_size)  # [rows, nb, type_size]
        if qtype in (Q.F16, Q.BF16, Q.F32):
            # One "block" per row: the kernels read the row's values directly.
            blocks = raw.reshape(rows, 1, cols * type_size)  # [rows, 1, cols * itemsize]
        layout = LAYOUTS[qtype]
        arrays = {
            "d": np.empty((rows, nb if layout.has_d else 0), np.uint16),
            "dmin": np.empty((rows, nb if layout.has_dmin else 0), np.uint16),
            "scales": np.empty((rows, blocks.shape[1], layout.scales), np.uint8),
            "qs": np.empty((rows, blocks.shape[1], layout.qs or blocks.shape[2]), np.uint8),
            "qh": np.empty((rows, blocks.shape[1], layout.qh), np.uint8),
        }
        chunk_rows = max(1, REPACK_CHUNK_BYTES // max(1, blocks[0].nbytes))
        for start in range(0, rows, chunk_rows):
            stop = min(rows, start + chunk_rows)
            for name, part in layout.split(blocks[start:stop]).items():
                arrays[name][start:stop] = part
        for array in arrays.values():
            array.flags.writeable = False
        return cls(qtype, (rows, cols), **arrays)

    @property
    def rows(self):
        return self.shape[0]

    @property
    def cols(self):
        return self.shape[1]

    @property
    def nbytes(self):
        """Bytes resident in memory: the GGUF size, plus 4 per 256 weights for Q3_K/Q4_K/Q5_K's unpacked scales."""
        return sum(a.nbytes for a in (self.d, self.dmin, self.scales, self.qs, self.qh))

    def dequantize_rows(self, row_indices):
        """float32 [n, cols] of the given rows (embedding lookups)."""
        row_indices = np.asarray(row_indices, dtype=np.int64).reshape(-1)  # [n]
        if row_indices.size and (row_indices.min() < 0 or row_indices.max() >= self.rows):
            raise IndexError(f"row index out of range [0, {self.rows})")
        out = np.empty((row_indices.size, self.cols), np.float32)  # [n, cols]
        if use_numpy_kernels():
            out[:] = dequantize_reference(self, row_indices)
        else:
            from inference.core import kernels  # kernels imports this module: imported at first use

            kernels.dequantize_rows_into(self, row_indices, out)
        return out

    def dequantize_panel(self, start, stop, out):
        """Rows [start, stop) into out[:stop - start] (a reused float32 [>= stop - start, cols] buffer)."""
        if not (0 <= start <= stop <= self.rows):
            raise IndexError(f"panel [{start}, {stop}) outside [0, {self.rows})")
        if out.dtype != np.float32 or out.ndim != 2 or out.shape[0] < stop - start or out.shape[1] != self.cols:
            raise ValueError(f"out must be float32 [>= {stop - start}, {self.cols}], got {out.dtype} {out.shape}")
        panel = out[: stop - start]  # [stop - start, cols]
        if use_numpy_kernels():
            panel[:] = dequantize_reference(self, np.arange(start, stop))
        else:
            from inference.core import kernels

            kernels.dequantize_rows_into(self, np.arange(start, stop), panel)
        return panel

    def __repr__(self):
        return f"QuantMatrix({self.qtype.name}, {self.shape}, {self.nbytes} bytes)"


def use_numpy_kernels():
    """True when KOTATSU_KERNELS=numpy asks for the pure-numpy reference instead of compiled kernels."""
    value = os.environ.get("KOTATSU_KERNELS", "numba").strip().lower() or "numba"
    if value not in ("numba", "numpy"):
        raise ValueError(f"KOTATSU_KERNELS: expected numba or numpy, got {value!r}")
    return value == "numpy"


# --- repacking: GGUF block bytes -> the five arrays ------------------------------------------------


@dataclass(frozen=True)
class Layout:
    has_d: bool
    has_dmin: bool
    scales: int  # bytes of `scales` per block
    qs: int  # bytes of `qs` per block (0: the whole raw block, for F16/BF16/F32)
    qh: int  # bytes of `qh` per block
    split: object  # blocks uint8 [n, nb, type_size] -> {name: array [n, nb, ...]}


def f16_bits(blocks, offset):
    """The float16 at byte `offset` of every block, as uint16 bits [n, nb]."""
    return blocks[..., offset : offset + 2].copy().view(np.uint16)[..., 0]  # [n, nb, 2] -> [n, nb]


def split_q3_k_scales(packed):
    """Q3_K's 16 6-bit scales packed in 12 bytes [n, nb, 12] -> uint8 0..63 [n, nb, 16] (gguf's order)."""
    low = (packed[..., None, :8] >> NIBBLE_SHIFTS[:, None]).reshape(*packed.shape[:-1], 16)  # [n, nb, 2, 8] -> 16
    high = packed[..., None, 8:12] >> np.array([0, 2, 4, 6], dtype=np.uint8)[:, None]  # [n, nb, 4, 4]
    high = high.reshape(*packed.shape[:-1], 16)  # [n, nb, 16]
    return (low & np.uint8(0x0F)) | ((high & np.uint8(0x03)) << np.uint8(4))


def split_k_scales(packed):
    """Q4_K/Q5_K's 8 scales + 8 mins packed in 12 bytes [n, nb, 12] -> [n, nb, 16]: scales then mins."""
    n, nb, _ = packed.shape
    scale, minimum = GGUF_Q4_K.get_scale_min(packed.reshape(n * nb, 12))  # [n * nb, 8] each
    return np.concatenate([scale, minimum], axis=-1).reshape(n, nb, 16)


def raw_row(blocks):
    return {"qs": blocks}


LAYOUTS = {
    Q.Q4_0: Layout(True, False, 0, 16, 0, lambda b: {"d": f16_bits(b, 0), "qs": b[..., 2:18]}),
    Q.Q4_1: Layout(True, True, 0, 16, 0, lambda b: {"d": f16_bits(b, 0), "dmin": f16_bits(b, 2), "qs": b[..., 4:20]}),
    Q.Q5_0: Layout(True, False, 0, 16, 4, lambda b: {"d": f16_bits(b, 0), "qh": b[..., 2:6], "qs": b[..., 6:22]}),
    Q.Q5_1: Layout(
        True, True, 0, 16, 4,
        lambda b: {"d": f16_bits(b, 0), "dmin": f16_bits(b, 2), "qh": b[..., 4:8], "qs": b[..., 8:24]},
    ),
    Q.Q8_0: Layout(True, False, 0, 32, 0, lambda b: {"d": f16_bits(b, 0), "qs": b[..., 2:34]}),
    # GGUF Q2_K block: scales[16] qs[64] d dmin
    Q.Q2_K: Layout(
        True, True, 16, 64, 0,
        lambda b: {"scales": b[..., 0:16], "qs": b[..., 16:80], "d": f16_bits(b, 80), "dmin": f16_bits(b, 82)},
    ),
    # GGUF Q3_K block: hmask[32] qs[64] scales[12] d
    Q.Q3_K: Layout(
        True, False, 16, 64, 32,
        lambda b: {"qh": b[..., 0:32], "qs": b[..., 32:96], "scales": split_q3_k_scales(b[..., 96:108]),
                   "d": f16_bits(b, 108)},
    ),
    # GGUF Q4_K block: d dmin scales[12] qs[128]
    Q.Q4_K: Layout(
        True, True, 16, 128, 0,
        lambda b: {"d": f16_bits(b, 0), "dmin": f16_bits(b, 2), "scales": split_k_scales(b[..., 4:16]),
                   "qs": b[..., 16:144]},
    ),
    # GGUF Q5_K block: d dmin scales[12] qh[32] qs[128]
    Q.Q5_K: Layout(
        True, True, 16, 128, 32,
        lambda b: {"d": f16_bits(b, 0), "dmin": f16_bits(b, 2), "scales": split_k_scales(b[..., 4:16]),
                   "qh": b[..., 16:48], "qs": b[..., 48:176]},
    ),
    # GGUF Q6_K block: ql[128] qh[64] scales[16] (int8) d
    Q.Q6_K: Layout(
        True, False, 16, 128, 64,
        lambda b: {"qs": b[..., 0:128], "qh": b[..., 128:192], "scales": b[..., 192:208], "d": f16_bits(b, 208)},
    ),
    Q.F16: Layout(False, False, 0, 0, 0, raw_row),
    Q.BF16: Layout(False, False, 0, 0, 0, raw_row),
    Q.F32: Layout(False, False, 0, 0, 0, raw_row),
}


# --- the numpy reference ---------------------------------------------------------------------------


def f16_values(bits):
    """float16 bits -> float32 values, with a trailing axis to broadcast over a block's weights."""
    return bits.view(np.float16).astype(np.float32)[..., None]  # [n, nb] -> [n, nb, 1]


def nibbles(qs, group):
    """Packed bytes [n, nb, k] -> 4-bit values [n, nb, 2k]: in each run of `group` bytes, the low
    nibbles are the first `group` weights and the high nibbles the next `group` (GGUF's order)."""
    n, nb, k = qs.shape
    q = qs.reshape(n, nb, k // group, 1, group) >> NIBBLE_SHIFTS.reshape(2, 1)  # [n, nb, k/g, 2, g]
    return (q & np.uint8(0x0F)).reshape(n, nb, 2 * k)


def bit_planes(bits, group, planes):
    """Bytes [n, nb, k] -> [n, nb, planes * k]: bit p of byte j of each `group`-byte run is value
    p * group + j of that run, taking `8 // planes` bits per value (GGUF's qh/hmask/2-bit order)."""
    n, nb, k = bits.shape
    width = 8 // planes
    shifts = (np.arange(planes, dtype=np.uint8) * width).reshape(planes, 1)
    q = bits.reshape(n, nb, k // group, 1, group) >> shifts  # [n, nb, k/g, planes, g]
    return (q & np.uint8((1 << width) - 1)).reshape(n, nb, planes * k)


def dequantize_reference(w, row_indices):
    """float32 [n, cols] of the given rows, by numpy on the repacked arrays (== gguf.quants.dequantize)."""
    rows = np.asarray(row_indices, dtype=np.int64)
    d, dmin, scales, qs, qh = (a[rows] for a in (w.d, w.dmin, w.scales, w.qs, w.qh))  # [n, nb, ...]
    n, cols, t = rows.size, w.cols, w.qtype
    if t == Q.F32:
        return qs.reshape(n, -1).view(np.float32).copy()  # [n, cols]
    if t == Q.F16:
        return qs.reshape(n, -1).view(np.float16).astype(np.float32)
    if t == Q.BF16:
        return (qs.reshape(n, -1).view(np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)
    if t == Q.Q8_0:
        values = f16_values(d) * qs.view(np.int8).astype(np.float32)  # [n, nb, 1] * [n, nb, 32]
    elif t in (Q.Q4_0, Q.Q4_1):
        q = nibbles(qs, 16).astype(np.float32)  # [n, nb, 32]
        values = f16_values(d) * (q - np.float32(8)) if t == Q.Q4_0 else f16_values(d) * q + f16_values(dmin)
    elif t in (Q.Q5_0, Q.Q5_1):
        high = np.unpackbits(qh, axis=-1, bitorder="little")  # [n, nb, 32]: bit j of the uint32 is weight j's 5th bit
        q = (nibbles(qs, 16) | (high << np.uint8(4))).astype(np.float32)  # [n, nb, 32]
        values = f16_values(d) * (q - np.float32(16)) if t == Q.Q5_0 else f16_values(d) * q + f16_values(dmin)
    elif t == Q.Q2_K:
        q = bit_planes(qs, 32, 4).reshape(n, -1, 16, 16).astype(np.float32)  # [n, nb, 16 sub-blocks, 16]
        scale = f16_values(d)[..., None] * (scales & np.uint8(0x0F)).astype(np.float32)[..., None]  # [n, nb, 16, 1]
        minimum = f16_values(dmin)[..., None] * (scales >> np.uint8(4)).astype(np.float32)[..., None]
        values = scale * q - minimum
    elif t == Q.Q3_K:
        low = bit_planes(qs, 32, 4).astype(np.int8)  # [n, nb, 256]
        missing_high = (bit_planes(qh, 32, 8) ^ np.uint8(1)).astype(np.int8)  # hmask bit 0 means -4
        q = (low - (missing_high << np.int8(2))).astype(np.float32).reshape(n, -1, 16, 16)  # [n, nb, 16, 16]
        scale = f16_values(d)[..., None] * (scales.astype(np.int8) - np.int8(32)).astype(np.float32)[..., None]
        values = scale * q
    elif t in (Q.Q4_K, Q.Q5_K):
        q = nibbles(qs, 32)  # [n, nb, 256]
        if t == Q.Q5_K:
            q = q | (bit_planes(qh, 32, 8) << np.uint8(4))
        q = q.astype(np.float32).reshape(n, -1, 8, 32)  # [n, nb, 8 sub-blocks, 32]
        scale = f16_values(d)[..., None] * scales[..., :8].astype(np.float32)[..., None]  # [n, nb, 8, 1]
        minimum = f16_values(dmin)[..., None] * scales[..., 8:].astype(np.float32)[..., None]
        values = scale * q - minimum
    elif t == Q.Q6_K:
        low = nibbles(qs, 64)  # [n, nb, 256]
        high = bit_planes(qh, 32, 4)  # [n, nb, 256]
        q = ((low | (high << np.uint8(4))).astype(np.int8) - np.int8(32)).astype(np.float32)
        scale = f16_values(d)[..., None] * scales.view(np.int8).astype(np.float32)[..., None]  # [n, nb, 16, 1]
        values = scale * q.reshape(n, -1, 16, 16)
    else:
        raise ValueError(f"unsupported quant type {t.name}")
    return values.reshape(n, cols)


def reference_matmul(x, w):
    """x @ W.T by numpy: float32 [T, cols] @ [cols, rows] -> [T, rows], a panel of rows at a time."""
    x = np.ascontiguousarray(x, dtype=np.float32)  # [T, cols]
    out = np.empty((x.shape[0], w.rows), np.float32)  # [T, rows]
    for start in range(0, w.rows, REFERENCE_PANEL_ROWS):
        stop = min(w.rows, start + REFERENCE_PANEL_ROWS)
        panel = dequantize_reference(w, np.arange(start, stop))  # [P, cols]
        np.matmul(x, panel.T, out=out[:, start:stop])  # [T, cols] @ [cols, P] -> [T, P]
    return out
