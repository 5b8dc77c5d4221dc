"""Where a prefill's CPU time goes (issue 12): the quantized matmuls (panel dequantize vs sgemm, with the sgemm's
GFLOP/s), attention, norms, rope and the MLP's silu; the best of --runs prefills of one --tokens prompt.

    KOTATSU_THREADS=1 .venv/bin/python bench/prefill_profile.py smollm2-135m-instruct [--tokens 662] [--runs 3]

CPU time (time.process_time, all threads of the process), not wall time: on a shared machine it moves little with
the load. At one thread it is the work itself; for what more threads gain, compare wall times (bench/engine.py).
Plain float32 sgemm of the same shapes, for comparison: `--plain-sgemm`.
"""

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
sys.path.insert(0, str(PROJECT_DIR / "bench"))

from engine import PREFILL_PARAGRAPH, model_path  # noqa: E402  (bench/engine.py)

from inference.core import forward, kernels  # noqa: E402
from inference.core.engine import Engine  # noqa: E402
from inference.core.scheduler import PREFILL_BLOCK_TOKENS  # noqa: E402

TIMED = {"attention": "attention", "rms_norm": "norms", "apply_rope": "rope", "silu_and_multiply": "silu"}


def timed(seconds: dict, category: str, function):
    def run(*args):
        started = time.process_time()
        result = function(*args)
        seconds[category] += time.process_time() - started
        return result

    return run


def profile(engine: Engine, prompt_ids: list[int], runs: int) -> tuple[float, dict, float]:
    """CPU seconds of the best prefill, its seconds per category, and its matmul flops."""
    seconds, flops = defaultdict(float), defaultdict(float)
    dequantize, prefill_matmul = kernels.dequantize_rows_into, kernels.prefill_matmul

    def counted_prefill_matmul(x, w, out):
        flops["matmul"] += 2.0 * x.shape[0] * w.rows * w.cols
        timed(seconds, "matmul (dequantize + sgemm)", prefill_matmul)(x, w, out)

    kernels.dequantize_rows_into = timed(seconds, "  of which panel dequantize", dequantize)
    kernels.prefill_matmul = counted_prefill_matmul
    originals = {name: getattr(forward, name) for name in TIMED}
    for name, category in TIMED.items():
        setattr(forward, name, timed(seconds, category, originals[name]))
    best = None
    try:
        for run in range(runs + 1):  # the first run loads the kernels
            seconds.clear()
            flops.clear()
            started = time.process_time()
            engine.prefill(prompt_ids, engine.new_cache())
            total = time.process_time() - started
            if run and (best is None or total < best[0]):
                best = (total, dict(seconds), flops["matmul"])
    finally:
        kernels.dequantize_rows_into, kernels.prefill_matmul = dequantize, prefill_matmul
        for name, function in originals.items():
            setattr(forward, name, function)
    return best


def plain_sgemm(engine: Engine) -> None:
    """GFLOP/s of OpenBLAS on float32 matrices of each layer matrix's shape, at one prefill block of rows."""
    layer = engine.weights.layers[0]
    for name in ("qkv", "attn_out", "gate_up", "down"):
        rows, cols = sum(part.rows for part in getattr(layer, name)), getattr(layer, name)[0].cols
        x = np.random.rand(PREFILL_BLOCK_TOKENS, cols).astype(np.float32)  # [T, cols]
        w = np.random.rand(rows, cols).astype(np.float32)  # [rows, cols]
        out = np.empty((PREFILL_BLOCK_TOKENS, rows), np.float32)  # [T, rows]
        best = min(timed_matmul(x, w, out) for _ in range(7))
        print(f"  plain sgemm {name:9s} [{PREFILL_BLOCK_TOKENS}, {cols}] @ [{cols}, {rows}]: "
              f"{2 * PREFILL_BLOCK_TOKENS * rows * cols / best / 1e9:.0f} GFLOP/s")


def timed_matmul(x, w, out) -> float:
    started = time.process_time()
    np.matmul(x, w.T, out=out)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="catalog name or .gguf path")
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--plain-sgemm", action="store_true")
    args = parser.parse_args()
    engine = Engine(model_path(args.model), context_length=1024)
    prompt_ids = engine.tokenizer.encode(PREFILL_PARAGRAPH * 80)[: args.tokens]
    total, seconds, flops = profile(engine, prompt_ids, args.runs)
    print(f"{args.model}, {len(prompt_ids)} tokens, {kernels.THREADS} thread(s), load average "
          f"{os.getloadavg()[0]:.1f}: CPU {total * 1000:.0f} ms ({len(prompt_ids) / total:.0f} tok/s of CPU)")
    dequantize = "  of which panel dequantize"
    for category in sorted((name for name in seconds if name != dequantize), key=lambda name: -seconds[name]):
        for name in (category, dequantize) if category.startswith("matmul") else (category,):
            print(f"  {name:30s} {seconds[name] * 1000:8.0f} ms {100 * seconds[name] / total:5.1f} %")
    rest = total - sum(spent for category, spent in seconds.items() if category != dequantize)
    print(f"  {'rest (embedding, adds, head)':30s} {rest * 1000:8.0f} ms {100 * rest / total:5.1f} %")
    sgemm = seconds["matmul (dequantize + sgemm)"] - seconds[dequantize]
    print(f"  sgemm alone: {flops / sgemm / 1e9:.0f} GFLOP/s")
    if args.plain_sgemm:
        plain_sgemm(engine)


if __name__ == "__main__":
    main()
