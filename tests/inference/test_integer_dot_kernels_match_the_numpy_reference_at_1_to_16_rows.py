"""The integer-dot kernels give the numpy reference's products at every few-row step count, on the row
lengths of real models (SmolLM2's 576 and 1536 columns too, Qwen's 8960: several column blocks at every T), and
on enough rows that each thread's chunk holds several groups of rows and a ragged last one, off by no more than
x's rounding to int16; a row they cannot split into their units is multiplied by the float kernel."""

import os
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "kotatsu" / "numba-cache"))

from inference.core import kernels  # noqa: E402
from inference.core.quantized import QuantMatrix, dequantize_reference, reference_matmul  # noqa: E402
from tests.inference.test_quantized_kernels_match_the_numpy_reference import gguf_bytes  # noqa: E402

Q = GGMLQuantizationType
ROWS = 37  # odd: the kernels unpack rows two at a time
MANY_ROWS = 8 * kernels.ROW_GROUP_DOTS * 4 + 13  # 4 chunks per thread of up to 8 threads: 4+ groups per chunk
CASES = (
    [(Q.Q4_K, ROWS, 512), (Q.Q6_K, ROWS, 1536), (Q.Q4_K, ROWS, 8960), (Q.Q6_K, ROWS, 8960)]
    + [(t, ROWS, cols) for t in (Q.Q4_0, Q.Q4_1, Q.Q8_0) for cols in (512, 576, 1536)]
    + [(t, MANY_ROWS, 1536) for t in (Q.Q4_K, Q.Q6_K, Q.Q4_1, Q.Q8_0)]
)


def allowed_error(x, w, expected):
    """x's int16 rounding moves each product by at most half a step (largest |x| of the unit / 32767) times
    the weight; on top of it, the float kernels' tolerance (1e-4 of the largest result)."""
    weight_sums = np.abs(dequantize_reference(w, np.arange(w.rows))).sum(axis=1)  # [rows]
    half_steps = np.abs(x).max(axis=1, keepdims=True) / (2 * 32767)  # [T, 1]
    return half_steps * weight_sums + 1e-4 * np.abs(expected).max()  # [T, rows]


@pytest.mark.parametrize("qtype, rows, cols", CASES, ids=lambda case: getattr(case, "name", str(case)))
def test_integer_dots_match_the_reference_from_1_to_16_rows(qtype, rows, cols, monkeypatch):
    rng = np.random.default_rng(cols + int(qtype))
    w = QuantMatrix.from_gguf_bytes(qtype, (rows, cols), gguf_bytes(qtype, rows, cols, rng))
    # Integer dots at every step count, whatever the measured choice of matmul (the byte dots' own test is
    # test_byte_dot_kernels_match_the_numpy_reference_at_1_to_16_rows).
    monkeypatch.setattr(kernels, "BYTE_DOTS", False)
    monkeypatch.setitem(kernels.INT_DOT_MAX_STEPS, qtype, kernels.FEW_ROWS_MAX)
    assert kernels.int_dot_steps(w) == kernels.FEW_ROWS_MAX
    assert_products_match_the_reference_from_1_to_16_rows(w, rng, allowed_error)


def assert_products_match_the_reference_from_1_to_16_rows(w, rng, allowed_error):
    """kernels.matmul against the numpy reference for 1..16 rows of x with an outlier, within allowed_error."""
    for steps in range(1, 17):
        x = rng.standard_normal((steps, w.cols), dtype=np.float32)  # [T, cols]
        x[0, 7] = 40.0  # an outlier activation, as LLM hidden states have
        expected = reference_matmul(x, w)  # [T, rows]
        got = kernels.matmul(x, w)
        assert got.shape == (steps, w.rows) and got.dtype == np.float32
        assert (np.abs(got - expected) <= allowed_error(x, w, expected)).all(), f"T={steps}"


def test_a_row_of_an_odd_number_of_blocks_is_multiplied_by_the_float_kernel():
    rng = np.random.default_rng(5)
    w = QuantMatrix.from_gguf_bytes(Q.Q4_1, (ROWS, 96), gguf_bytes(Q.Q4_1, ROWS, 96, rng))  # 3 blocks
    assert kernels.int_dot_steps(w) == 0
    x = rng.standard_normal((1, 96), dtype=np.float32)  # [T, cols]
    expected = reference_matmul(x, w)
    assert np.abs(kernels.matmul(x, w) - expected).max() <= 1e-4 * np.abs(expected).max()
