"""The integer-dot kernels sum int16 weights times int16 activations in int32: at the largest values a
Q6_K, Q4_K, Q8_0 or Q4_0 block can hold, and every activation at its unit's maximum, the sums still fit."""

import os
from pathlib import Path

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "kotatsu" / "numba-cache"))

from inference.core import kernels  # noqa: E402
from inference.core.quantized import QuantMatrix, reference_matmul  # noqa: E402

Q = GGMLQuantizationType
ROWS, COLS = 5, 1024
ONE = np.array([1.0], np.float16).view(np.uint8)  # the float16 1.0 as two bytes


def extreme_blocks(qtype):
    """GGUF bytes [ROWS, bytes] whose every weight is the type's largest |value| in its integer units."""
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    blocks = np.zeros((ROWS, COLS // block_size, type_size), np.uint8)  # [rows, nb, bytes]
    if qtype == Q.Q6_K:
        # ql = qh = 0: q - 32 = -32 everywhere, times int8 scales of -128, d = 1.
        blocks[..., 192:208] = np.int8(-128).view(np.uint8)
        blocks[..., 208:210] = ONE
    elif qtype == Q.Q4_K:
        # d = 1, dmin = 0, all 6-bit scales 63, all nibbles 15.
        blocks[..., 0:2] = ONE
        blocks[..., 4:16] = 0xFF
        blocks[..., 16:144] = 0xFF
    else:
        # d = 1 and every quant -128 (Q8_0) or nibble 0, so q - 8 = -8 (Q4_0).
        blocks[..., 0:2] = ONE
        blocks[..., 2:] = 0x80 if qtype == Q.Q8_0 else 0x00
    return blocks.reshape(ROWS, -1)


@pytest.mark.parametrize("qtype", [Q.Q6_K, Q.Q4_K, Q.Q8_0, Q.Q4_0], ids=lambda t: t.name)
def test_the_largest_weights_times_the_largest_activations_stay_exact(qtype, monkeypatch):
    monkeypatch.setattr(kernels, "BYTE_DOTS", False)  # the int16 dots (the byte dots: below)
    monkeypatch.setitem(kernels.INT_DOT_MAX_STEPS, qtype, kernels.FEW_ROWS_MAX)  # integer dots at every T
    w = QuantMatrix.from_gguf_bytes(qtype, (ROWS, COLS), extreme_blocks(qtype))
    for steps in (1, 5, kernels.FEW_ROWS_MAX):
        x = np.full((steps, COLS), -3.0, np.float32)  # [T, cols]: every activation its group's maximum
        expected = reference_matmul(x, w)  # [T, rows]
        got = kernels.matmul(x, w)
        np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize(
    "qtype, quant", [(Q.Q6_K, 0x00), (Q.Q6_K, 0xFF), (Q.Q4_K, 0xFF), (Q.Q8_0, 0x00), (Q.Q8_0, 0xFF)],
    ids=lambda case: getattr(case, "name", hex(case) if isinstance(case, int) else str(case)),
)
def test_byte_dots_of_the_largest_weight_bytes_stay_exact(qtype, quant, monkeypatch):
    """Byte dots sum 4 unsigned weight bytes (up to 255: Q8_0's 127 + 128) times x's int8 planes per int32 lane;
    quant is every Q8_0 byte's two's complement (-128 or 127) or every Q6_K qs byte (q - 32 = -32 or 31)."""
    monkeypatch.setattr(kernels, "BYTE_DOTS", True)
    monkeypatch.setitem(kernels.BYTE_DOT_MAX_STEPS, qtype, kernels.FEW_ROWS_MAX)
    blocks = extreme_blocks(qtype).reshape(ROWS, COLS // GGML_QUANT_SIZES[qtype][0], -1)
    if qtype == Q.Q8_0:
        blocks[..., 2:] = quant ^ 0x80  # every quant -128 or 127
    elif qtype == Q.Q6_K:
        blocks[..., 0:192] = quant  # q = 0 or 63: q - 32 = -32 or 31
    w = QuantMatrix.from_gguf_bytes(qtype, (ROWS, COLS), blocks.reshape(ROWS, -1))
    for steps in (1, 5):
        x = np.full((steps, COLS), -3.0, np.float32)  # [T, cols]: every activation its group's maximum
        np.testing.assert_allclose(kernels.matmul(x, w), reference_matmul(x, w), rtol=1e-5)
