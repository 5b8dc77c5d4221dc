"""How fast the decode kernels stream a model's real matrices, against a plain read of the same bytes.

    KOTATSU_THREADS=1 .venv/bin/python bench/decode_matrices.py [--model qwen2.5-coder-1.5b-instruct]
                                                                [--layers 4] [--steps 1,2,8] [--rounds 5]
                                                                [--against /tmp/old/inference/core/kernels.py]

Loads --layers layers (and the head) of a catalog model or a .gguf path, then for each kind of matrix (qkv,
attn_out, gate_up, down per quant type, head) times inference.core.kernels.matmul(x [T, cols], W) on the
calling process's KOTATSU_THREADS: each call best of --rounds, walking through all loaded layers' copies
reading 96 MB of other memory before each call so the weights come from DRAM as in a decode step, then the
median over layers. Prints per (matrix, T):

    ms        time of one matmul
    GB/s      resident weight bytes / time
    read GB/s a plain compiled read of the same arrays (the sum of their uint64 words, one pass, same threads)
    share     GB/s / read GB/s: how close the kernel is to the memory's speed

With --against (another version of inference/core/kernels.py, e.g. from `git show REV:inference/core/kernels.py`),
that module's matmul is timed too, alternating with ours call by call on the same copies (a shared machine's
bursts then cost both alike), and printed as "vs" = its time / ours (> 1: ours is faster).
"""

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from numba import njit, prange  # noqa: E402

from inference.core import kernels  # noqa: E402


@njit(cache=True)
def sum_words(words):
    total = np.uint64(0)
    for i in range(words.size):
        total += words[i]
    return total


@njit(parallel=True, cache=True)
def read_words(words, n_chunks):
    """Sum of all uint64 words: each byte read once, n_chunks parallel pieces. (A loop over a piece's bounds
    inside the prange, instead of a slice, stayed scalar: 2.5 GB/s against 20.)"""
    parts = np.zeros(n_chunks, np.uint64)
    for chunk in prange(n_chunks):
        parts[chunk] = sum_words(words[chunk * words.size // n_chunks: (chunk + 1) * words.size // n_chunks])
    return parts.sum()


def plain_read(w):
    """One pass over the QuantMatrix's arrays as uint64 words (each array's tail bytes ignored)."""
    for array in (w.qs, w.d, w.dmin, w.scales, w.qh):
        flat = array.reshape(-1).view(np.uint8)
        words = flat[: flat.size // 8 * 8].view(np.uint64)
        read_words(words, min(words.size, 4 * kernels.THREADS) or 1)


EVICT = np.ones(96 << 17, np.uint64)  # 96 MB, 3x the L3: read before each timed call


def best_times(calls, rounds):
    """calls: per layer copy, one callable or a tuple of them timed alternating; best of `rounds` per copy and
    callable, the L3 cache evicted before each call; the median over copies (a tuple: one median per callable)."""
    calls = [c if isinstance(c, tuple) else (c,) for c in calls]
    best = np.full((len(calls), len(calls[0])), np.inf)  # [copies, callables]
    for _ in range(rounds):
        for i, alternatives in enumerate(calls):
            for k, call in enumerate(alternatives):
                read_words(EVICT, 4 * kernels.THREADS)
                started = time.perf_counter()
                call()
                best[i, k] = min(best[i, k], time.perf_counter() - started)
    medians = np.median(best, axis=0)
    return float(medians[0]) if medians.size == 1 else tuple(float(m) for m in medians)


def model_path(name):
    if name.endswith(".gguf") or os.path.sep in name:
        return name
    cache = Path(os.environ.get("KOTATSU_MODEL_CACHE", Path.home() / ".cache/kotatsu/models"))
    return str(cache / "blobs" / (cache / "refs" / name).read_text().strip())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--steps", default="1,2,8")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated matrix kinds (qkv, attn_out, gate_up, down, head)")
    parser.add_argument("--against", help="another kernels.py to time alternating with ours")
    args = parser.parse_args()
    other = None
    if args.against:
        spec = importlib.util.spec_from_file_location("kernels_against", args.against)
        other = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = other  # numba's disk cache imports a kernel's module by name when it loads it
        spec.loader.exec_module(other)
        other.warm_up()
    from inference.core.gguf_loader import load_stage, read_gguf

    stage = load_stage(read_gguf(model_path(args.model)), range(args.layers), False, True)
    kinds = {}
    for layer in stage.layers:
        for kind in ("qkv", "attn_out", "gate_up", "down"):
            for w in getattr(layer, kind):
                kinds.setdefault(f"{kind} {w.qtype.name} {w.rows}x{w.cols}", []).append(w)
    for w in stage.head:
        kinds.setdefault(f"head {w.qtype.name} {w.rows}x{w.cols}", []).append(w)
    only = set(filter(None, args.only.split(",")))
    kernels.warm_up()
    print(f"threads {kernels.THREADS}, load average {os.getloadavg()[0]:.2f}, best of {args.rounds}, median over copies")
    print(f"{'matrix':>32} {'T':>3} {'ms':>8} {'GB/s':>6} {'read GB/s':>9} {'share':>6}"
          + (f" {'their ms':>8} {'vs':>5}" if other else ""))
    rng = np.random.default_rng(0)
    for name, copies in kinds.items():
        if only and name.split()[0] not in only:
            continue
        nbytes = copies[0].nbytes
        read = best_times([lambda w=w: plain_read(w) for w in copies], args.rounds)
        for steps in (int(s) for s in args.steps.split(",")):
            x = rng.standard_normal((steps, copies[0].cols), dtype=np.float32)  # [T, cols]
            if other is None:
                took = best_times([lambda w=w: kernels.matmul(x, w) for w in copies], args.rounds)
                versus = ""
            else:
                took, theirs = best_times(
                    [(lambda w=w: kernels.matmul(x, w), lambda w=w: other.matmul(x, w)) for w in copies], args.rounds
                )
                versus = f" {theirs * 1e3:8.3f} {theirs / took:5.2f}"
            print(f"{name:>32} {steps:>3} {took * 1e3:8.3f} {nbytes / took / 1e9:6.1f} {nbytes / read / 1e9:9.1f}"
                  f" {read / took:6.2f}{versus}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
