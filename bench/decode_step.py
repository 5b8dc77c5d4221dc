"""Where one decode step of the engine goes: its weight gemvs against everything else.

    .venv/bin/python bench/decode_step.py [--model PATH.gguf] [--threads N] [--context 64]

Times, best of several rounds, (1) a whole single-sequence decode step (inference.core.forward.forward with
a KV cache of --context positions) and (2) the same step's gemvs alone, back to back in the order the
step runs them over the same weights. (1) - (2) is what the step spends outside BLAS. Also prints the
bytes the gemvs read and the bandwidth they reach, against bench/engine.py's probe (one 512 MB gemv) run
right after them: the share of the memory bandwidth that many small gemvs get.
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

from bench.engine import bandwidth_probe, default_model  # noqa: E402
from inference.core.engine import Engine  # noqa: E402
from inference.core.forward import forward  # noqa: E402
from inference.core.kv_cache import Segment  # noqa: E402

ROUNDS, STEPS_PER_ROUND = 5, 20
LAYER_MATRICES = ("qkv", "attn_out", "gate_up", "down")


def best_seconds(step) -> float:
    step()
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(STEPS_PER_ROUND):
            step()
        best = min(best, (time.perf_counter() - started) / STEPS_PER_ROUND)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--context", type=int, default=64)
    args = parser.parse_args()
    engine = Engine(args.model or default_model(), context_length=max(1024, args.context + 1))
    weights = engine.weights
    cache = engine.new_cache()
    engine.prefill(list(range(100, 100 + args.context)), cache)

    def decode_step():
        forward(np.array([200]), weights, [Segment(cache, 1)])  # [1] -> [1, V]
        cache.length -= 1  # the next round writes the same position again

    vectors = {name: np.ones(getattr(weights.layers[0], name).shape[0], dtype=np.float32) for name in LAYER_MATRICES}
    head_vector = np.ones(weights.head.shape[0], dtype=np.float32)  # [D]

    def gemvs_only():
        for layer in weights.layers:
            for name in LAYER_MATRICES:
                vectors[name] @ getattr(layer, name)  # [I] @ [I, O]
        head_vector @ weights.head  # [D] @ [D, V]

    gemv_bytes = sum(getattr(layer, name).nbytes for layer in weights.layers for name in LAYER_MATRICES)
    gemv_bytes += weights.head.nbytes
    with threadpool_limits(args.threads):
        step_s, gemvs_s = best_seconds(decode_step), best_seconds(gemvs_only)
        probe_bytes_s = bandwidth_probe()(10)
    print(f"{args.threads} BLAS threads, KV cache of {args.context} positions")
    print(f"decode step          {step_s * 1e3:6.2f} ms  ({1 / step_s:.1f} tok/s)")
    print(f"its gemvs alone      {gemvs_s * 1e3:6.2f} ms  ({gemv_bytes / 2**20:.1f} MB at {gemv_bytes / gemvs_s / 1e9:.1f} GB/s)")
    print(f"outside BLAS         {(step_s - gemvs_s) * 1e3:6.2f} ms")
    print(f"probe (512 MB gemv)             {probe_bytes_s / 1e9:.1f} GB/s: the gemvs get {gemv_bytes / gemvs_s / probe_bytes_s:.0%} of it")


if __name__ == "__main__":
    main()
