"""How the engine should multiply a few rows by a weight matrix: one sgemm, or one gemv per row.

    .venv/bin/python bench/small_batches.py [--model PATH.gguf] [--threads N]

For each kind of matrix of the model (every layer's, so the weights stream from memory as in a decode
step) and 1 to 8 rows, prints the microseconds per matrix of `x @ W` (OpenBLAS sgemm, which repacks
W on every call) and of one `row @ W` gemv per row (the second and later rows find W in the
last-level cache when it fits there). inference.core.forward.GEMV_ROWS_BELOW is chosen from this table.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.engine import default_model  # noqa: E402
from inference.core.gguf_loader import load_stage, read_gguf  # noqa: E402

ROW_COUNTS = (1, 2, 3, 4, 5, 6, 8)
REPEATS = 3


def seconds_per_matrix(product, weights: list[np.ndarray]) -> float:
    for weight in weights[:2]:
        product(weight)  # warm-up
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        for weight in weights:
            product(weight)
        best = min(best, (time.perf_counter() - started) / len(weights))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    model = read_gguf(args.model or default_model())
    stage = load_stage(model, range(model.config.n_layers), with_embedding=False, with_head=True)
    matrices = {name: [getattr(layer, name) for layer in stage.layers] for name in ("qkv", "attn_out", "gate_up", "down")}
    matrices["head"] = [stage.head]
    rng = np.random.default_rng(0)

    print(f"{args.threads} BLAS threads; microseconds per matrix, sgemm / one gemv per row")
    print(f"{'matrix':24}" + "".join(f"{f'{rows} rows':>16}" for rows in ROW_COUNTS))
    with threadpool_limits(args.threads):
        for name, weights in matrices.items():
            cells = []
            for n_rows in ROW_COUNTS:
                x = rng.standard_normal((n_rows, weights[0].shape[0]), dtype=np.float32)  # [T, I]
                gemm = seconds_per_matrix(lambda weight: x @ weight, weights)  # [T, I] @ [I, O]
                per_row = seconds_per_matrix(lambda weight: [row @ weight for row in x], weights)  # T x [I] @ [I, O]
                cells.append(f"{gemm * 1e6:7.0f} /{per_row * 1e6:6.0f}")
            print(f"{name + ' ' + 'x'.join(map(str, weights[0].shape)):24}" + "".join(f"{cell:>16}" for cell in cells))


if __name__ == "__main__":
    main()
