"""The byte-dot kernels (x as two int8 planes per 32 columns, per 256 for the K-quants, multiplied by the weights'
own bytes) give the numpy reference's products at every few-row step count, on the row lengths of real models
(SmolLM2's 576 and 1536 columns: Q4_1's 576 ends in half a 64-byte load), off by no more than x's rounding."""

import os
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "kotatsu" / "numba-cache"))

from inference.core import kernels  # noqa: E402
from inference.core.quantized import QuantMatrix, dequantize_reference  # noqa: E402
from tests.inference.test_integer_dot_kernels_match_the_numpy_reference_at_1_to_16_rows import (  # noqa: E402
    assert_products_match_the_reference_from_1_to_16_rows,
)
from tests.inference.test_quantized_kernels_match_the_numpy_reference import gguf_bytes  # noqa: E402

Q = GGMLQuantizationType
ROWS = 37
CASES = [(Q.Q4_K, 512), (Q.Q6_K, 1536)] + [(t, cols) for t in (Q.Q4_1, Q.Q8_0) for cols in (512, 576, 1536)]


def allowed_error(x, w, expected):
    """x's rounding moves each product by at most half a step (largest |x| of its group of columns / 32639) times
    the weight; on top of it, the float kernels' tolerance (1e-4 of the largest result)."""
    steps, cols = x.shape
    group = kernels.K_BYTE_UNIT if w.qtype in (Q.Q4_K, Q.Q6_K) else 32
    half_steps = np.abs(x).reshape(steps, cols // group, group).max(axis=2) / (2 * float(kernels.XV_MAX))  # [T, cols/group]
    half_steps = np.repeat(half_steps, group, axis=1)  # [T, cols]
    weights = np.abs(dequantize_reference(w, np.arange(w.rows)))  # [rows, cols]
    return half_steps @ weights.T + 1e-4 * np.abs(expected).max()  # [T, rows]


@pytest.mark.parametrize("qtype, cols", CASES, ids=lambda case: getattr(case, "name", str(case)))
def test_byte_dots_match_the_reference_from_1_to_16_rows(qtype, cols, monkeypatch):
    rng = np.random.default_rng(cols + int(qtype))
    w = QuantMatrix.from_gguf_bytes(qtype, (ROWS, cols), gguf_bytes(qtype, ROWS, cols, rng))
    # Byte dots at every step count, on any CPU (without VNNI through the portable widening multiply).
    monkeypatch.setattr(kernels, "BYTE_DOTS", True)
    monkeypatch.setitem(kernels.BYTE_DOT_MAX_STEPS, qtype, kernels.FEW_ROWS_MAX)
    assert kernels.byte_dot_steps(w) == kernels.FEW_ROWS_MAX
    assert_products_match_the_reference_from_1_to_16_rows(w, rng, allowed_error)


def test_a_row_of_an_odd_number_of_blocks_is_not_multiplied_by_byte_dots(monkeypatch):
    monkeypatch.setattr(kernels, "BYTE_DOTS", True)
    rng = np.random.default_rng(5)
    w = QuantMatrix.from_gguf_bytes(Q.Q4_1, (ROWS, 96), gguf_bytes(Q.Q4_1, ROWS, 96, rng))  # 3 blocks
    assert kernels.byte_dot_steps(w) == 0
