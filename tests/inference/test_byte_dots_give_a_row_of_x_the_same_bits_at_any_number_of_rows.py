"""The byte dots unpack each unit of a weight row once for a group of rows of x, but give every row of x exactly
the result it gets alone: a sequence's logits do not depend on how many others decode beside it."""

import os
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "kotatsu" / "numba-cache"))

from inference.core import kernels  # noqa: E402
from inference.core.quantized import QuantMatrix  # noqa: E402
from tests.inference.test_quantized_kernels_match_the_numpy_reference import gguf_bytes  # noqa: E402

Q = GGMLQuantizationType
ROWS = 37
CASES = [(Q.Q4_K, 512), (Q.Q6_K, 1536), (Q.Q4_1, 576), (Q.Q4_1, 1536), (Q.Q8_0, 576), (Q.Q8_0, 512)]


@pytest.mark.parametrize("qtype, cols", CASES, ids=lambda case: getattr(case, "name", str(case)))
def test_each_row_of_x_gets_its_one_row_result_at_1_to_16_rows(qtype, cols, monkeypatch):
    rng = np.random.default_rng(cols + int(qtype))
    w = QuantMatrix.from_gguf_bytes(qtype, (ROWS, cols), gguf_bytes(qtype, ROWS, cols, rng))
    monkeypatch.setattr(kernels, "BYTE_DOTS", True)
    monkeypatch.setitem(kernels.BYTE_DOT_MAX_STEPS, qtype, kernels.FEW_ROWS_MAX)
    x = rng.standard_normal((16, cols), dtype=np.float32)  # [16, cols]
    x[3, 7] = 40.0  # an outlier activation, as LLM hidden states have
    alone = np.concatenate([kernels.matmul(x[t : t + 1], w) for t in range(16)])  # [16, rows]
    for steps in range(2, 17):  # whole groups of rows of x and every remainder
        np.testing.assert_array_equal(kernels.matmul(x[:steps], w), alone[:steps], err_msg=f"T={steps}")
