"""Weights stay quantized: a QuantMatrix represents exactly gguf's values without holding them in
float32, and the compiled kernels multiply by it as the numpy reference does, for every quant type."""

import os
import tracemalloc
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

# Kept across test sessions (each gets a fresh VAR_DIR): only the first run pays for compiling.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "kotatsu" / "numba-cache"))

from inference.core import kernels  # noqa: E402
from inference.core.quantized import SUPPORTED_TYPES, QuantMatrix, dequantize_reference, reference_matmul  # noqa: E402

Q = GGMLQuantizationType
# gguf cannot quantize the K-quants: their blocks are random bytes with these float16 fields (byte
# offsets in the block) set to finite scales.
K_QUANT_F16_FIELDS = {Q.Q2_K: (80, 82), Q.Q3_K: (108,), Q.Q4_K: (0, 2), Q.Q5_K: (0, 2), Q.Q6_K: (208,)}
ROWS = 37  # odd, and not a multiple of the chunks or panels the kernels split rows into
COLS = 512  # two 256-weight super-blocks


def gguf_bytes(qtype, rows, cols, rng):
    """GGUF bytes of a random [rows, cols] matrix of this type: uint8 [rows, bytes per row]."""
    if qtype in K_QUANT_F16_FIELDS:
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        blocks = rng.integers(0, 256, (rows, cols // block_size, type_size), dtype=np.uint8)  # [rows, nb, bytes]
        for offset in K_QUANT_F16_FIELDS[qtype]:
            scale = rng.uniform(-0.05, 0.05, blocks.shape[:2]).astype(np.float16)  # [rows, nb]
            scale[0, 0] = np.float16(3e-7)  # a float16 subnormal
            blocks[..., offset : offset + 2] = scale.view(np.uint8).reshape(*blocks.shape[:2], 2)
        return blocks.reshape(rows, -1)
    weights = rng.standard_normal((rows, cols), dtype=np.float32)  # [rows, cols]
    weights[0, :4] = [-0.0, 1e-6, -3e-8, 60000.0]  # signed zero, float16 subnormals, a large value
    return np.ascontiguousarray(gguf.quants.quantize(weights, qtype)).view(np.uint8).reshape(rows, -1)


def gguf_dequantize(qtype, raw):
    """gguf's own float32 values of the bytes (it wants F16/F32 tensors typed, the rest as uint8)."""
    typed = {Q.F16: np.float16, Q.F32: np.float32}.get(qtype, np.uint8)
    return np.asarray(gguf.quants.dequantize(raw.view(typed), qtype), dtype=np.float32).reshape(raw.shape[0], -1)


@pytest.fixture(scope="module", autouse=True)
def compiled():
    kernels.warm_up()


@pytest.mark.parametrize("qtype", SUPPORTED_TYPES, ids=lambda t: t.name)
def test_a_quant_matrix_represents_exactly_what_gguf_dequantizes(qtype):
    rng = np.random.default_rng(int(qtype))
    raw = gguf_bytes(qtype, ROWS, COLS, rng)
    expected = gguf_dequantize(qtype, raw)  # [rows, cols]
    w = QuantMatrix.from_gguf_bytes(qtype, (ROWS, COLS), raw)

    np.testing.assert_array_equal(w.dequantize_rows(np.arange(ROWS)), expected)
    np.testing.assert_array_equal(dequantize_reference(w, np.arange(ROWS)), expected)
    tokens = [5, 0, 36, 5]  # embedding lookups: any order, repeats
    np.testing.assert_array_equal(w.dequantize_rows(tokens), expected[tokens])
    buffer = np.full((20, COLS), np.nan, np.float32)  # reused, larger than the panel
    panel = w.dequantize_panel(10, 27, buffer)
    np.testing.assert_array_equal(panel, expected[10:27])
    assert np.isnan(buffer[17:]).all()


@pytest.mark.parametrize("qtype", SUPPORTED_TYPES, ids=lambda t: t.name)
def test_compiled_matmul_matches_the_numpy_reference(qtype, monkeypatch):
    rng = np.random.default_rng(100 + int(qtype))
    w = QuantMatrix.from_gguf_bytes(qtype, (ROWS, COLS), gguf_bytes(qtype, ROWS, COLS, rng))
    # Prefill shapes go through several panels, the last one partial.
    monkeypatch.setattr(kernels, "PANEL_BYTES", 16 * 4 * COLS)
    for steps in [*range(1, kernels.FEW_ROWS_MAX + 1), 17, 64, 300]:
        x = rng.standard_normal((steps, COLS), dtype=np.float32)  # [T, cols]
        expected = reference_matmul(x, w)  # [T, cols] @ [cols, rows] -> [T, rows]
        got = kernels.matmul(x, w)
        assert got.shape == (steps, ROWS) and got.dtype == np.float32
        error = np.abs(got - expected).max() / np.abs(expected).max()
        assert error < 1e-4, f"T={steps}: relative error {error:.2e}"


def test_numpy_kernels_is_the_reference_and_a_bad_value_is_refused(monkeypatch):
    rng = np.random.default_rng(7)
    w = QuantMatrix.from_gguf_bytes(Q.Q4_K, (ROWS, COLS), gguf_bytes(Q.Q4_K, ROWS, COLS, rng))
    x = rng.standard_normal((3, COLS), dtype=np.float32)  # [T, cols]
    monkeypatch.setenv("KOTATSU_KERNELS", "numpy")
    np.testing.assert_array_equal(kernels.matmul(x, w), reference_matmul(x, w))
    monkeypatch.setenv("KOTATSU_KERNELS", "cuda")
    with pytest.raises(ValueError, match="KOTATSU_KERNELS"):
        kernels.matmul(x, w)


@pytest.mark.parametrize("qtype", [Q.Q4_K, Q.Q6_K, Q.Q4_1, Q.Q8_0], ids=lambda t: t.name)
def test_a_quant_matrix_never_holds_its_weights_in_float32(qtype, monkeypatch):
    rows, cols = 512, 2048
    raw = gguf_bytes(qtype, rows, cols, np.random.default_rng(3))
    monkeypatch.setattr("inference.core.quantized.REPACK_CHUNK_BYTES", 64 << 10)
    tracemalloc.start()
    try:
        w = QuantMatrix.from_gguf_bytes(qtype, (rows, cols), raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Resident: the GGUF bytes, plus 4 bytes per 256 weights where K-quant scales are unpacked.
    assert raw.nbytes <= w.nbytes <= raw.nbytes * 1.03
    # Built chunk by chunk: the result plus small temporaries, well under a 4 MB float32 copy.
    assert peak < 2 * raw.nbytes < rows * cols * 4
