"""How fast the quantized-matrix kernels stream their weights, per quant type, against a plain read.

    .venv/bin/python bench/kernels.py [--types Q4_K,Q6_K] [--shapes 8960x1536,1536x576] [--steps 1,8,512]
                                      [--rounds 5] [--threads N] [--hot]

For each shape [rows, cols] (out_features x in_features) and type, builds random valid blocks, then times
inference.core.kernels.matmul(x [T, cols], W) for each T: each call best of --rounds. Unless --hot, a round
walks through enough copies of the matrix to exceed the L3 cache several times, so the weights come from
DRAM as in a real decode step (a model is far bigger than L3). Prints per (shape, type, T):

    ms      time of one matmul
    GB/s    resident weight bytes / time
    vs read that rate / the plain read of the same bytes (np.copyto into a scratch buffer: numpy's
            memcpy, one thread; and the same split over --threads threads): the share of the bandwidth reached
    GFLOP/s 2 T rows cols / time
    tok/s   T / time: tokens (rows of x) per second through this one matrix
    xT=1    for T > 1: T * time(T=1) / time(T): how much better a batch of T is than T single steps

Also prints the first-use compile time of every kernel (warm_up in a fresh process with an empty numba
cache) and the time to load them from the disk cache.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType  # noqa: E402

from inference.core import kernels  # noqa: E402
from inference.core.quantized import SUPPORTED_TYPES, QuantMatrix  # noqa: E402

COLD_BYTES = 256 << 20  # copies of a matrix walked per round: 8x the 32 MB L3
# Byte offsets of the float16 scale fields in each block: set to small finite values in random blocks.
F16_FIELDS = {
    "Q4_0": (0,), "Q4_1": (0, 2), "Q5_0": (0,), "Q5_1": (0, 2), "Q8_0": (0,),
    "Q2_K": (80, 82), "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,),
}
WARM_UP = "import time; from inference.core import kernels; print(kernels.warm_up())"


def random_matrix_bytes(qtype, rows, cols, rng):
    """Random valid GGUF bytes of a [rows, cols] matrix (uint8 [rows, row bytes])."""
    if qtype == GGMLQuantizationType.F32:
        return rng.standard_normal((rows, cols), dtype=np.float32).view(np.uint8)
    if qtype == GGMLQuantizationType.F16:
        return rng.standard_normal((rows, cols), dtype=np.float32).astype(np.float16).view(np.uint8)
    if qtype == GGMLQuantizationType.BF16:
        high_halves = rng.standard_normal((rows, cols), dtype=np.float32).view(np.uint32) >> 16  # [rows, cols]
        return high_halves.astype(np.uint16).view(np.uint8)
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, (rows, cols // block_size, type_size), dtype=np.uint8)  # [rows, nb, bytes]
    for offset in F16_FIELDS[qtype.name]:
        scale = rng.uniform(0.001, 0.02, blocks.shape[:2]).astype(np.float16)  # [rows, nb]
        blocks[..., offset : offset + 2] = scale.view(np.uint8).reshape(*blocks.shape[:2], 2)
    return blocks.reshape(rows, -1)


def best_seconds(fn, copies, rounds):
    """Mean over copies of the best over rounds of fn(copy): each call is timed on its own, so another
    process taking the cores for a while spoils only the calls it overlaps, not the whole round. A
    round walks all copies, so each copy is cold (evicted by the others) on every visit."""
    best = [float("inf")] * len(copies)
    for _ in range(rounds):
        for i, copy in enumerate(copies):
            started = time.perf_counter()
            fn(copy)
            best[i] = min(best[i], time.perf_counter() - started)
    return sum(best) / len(best)


def compile_seconds():
    """(first-use compile, load from cache) seconds of kernels.warm_up, each in a fresh process."""
    with tempfile.TemporaryDirectory() as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        run = lambda: float(subprocess.run(  # noqa: E731
            [sys.executable, "-c", WARM_UP], env=env, cwd=PROJECT_DIR, capture_output=True, text=True, check=True,
        ).stdout.split()[-1])
        return run(), run()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--types", default=",".join(t.name for t in SUPPORTED_TYPES))
    parser.add_argument("--shapes", default="8960x1536,1536x576", help="rows x cols (out x in features)")
    parser.add_argument("--steps", default="1,8,512", help="T values: rows of x")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=kernels.THREADS)
    parser.add_argument("--hot", action="store_true", help="one copy: the weights stay in cache")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time measurement")
    args = parser.parse_args()
    kernels.set_threads(args.threads)
    if not args.no_compile:
        compiled, loaded = compile_seconds()
        print(f"warm_up: first use (compile) {compiled:.1f} s, from the disk cache {loaded:.1f} s")
    kernels.warm_up()
    rng = np.random.default_rng(0)
    steps = [int(s) for s in args.steps.split(",")]
    where = "hot (one copy)" if args.hot else "cold (weights from DRAM)"
    print(f"threads {args.threads}, {where}, each call best of {args.rounds}")
    print(f"{'shape':>10} {'type':>5} {'T':>4} {'ms':>8} {'GB/s':>6} {'vs memcpy':>9} {'vs n-thr':>8}"
          f" {'GFLOP/s':>7} {'tok/s':>8} {'xT=1':>5}")
    for shape in args.shapes.split(","):
        rows, cols = (int(n) for n in shape.split("x"))
        for name in args.types.split(","):
            qtype = GGMLQuantizationType[name]
            block_size = GGML_QUANT_SIZES[qtype][0]
            if cols % block_size:
                print(f"{shape:>10} {name:>5}    -  {cols} columns are not whole {block_size}-weight blocks")
                continue
            raw = random_matrix_bytes(qtype, rows, cols, rng)
            matrix = QuantMatrix.from_gguf_bytes(qtype, (rows, cols), raw)
            n_copies = 1 if args.hot else max(2, COLD_BYTES // matrix.nbytes)
            copies = [QuantMatrix.from_gguf_bytes(qtype, (rows, cols), raw) for _ in range(n_copies)]
            del raw
            plain = plain_read_seconds(copies, args.rounds, args.threads)
            parallel = f"{args.threads}-thread"
            single_step = None
            for t in steps:
                x = rng.standard_normal((t, cols), dtype=np.float32)  # [T, cols]
                # Prefill is bound by flops, not by where the weights come from: two copies are enough.
                walked = copies if t <= kernels.FEW_ROWS_MAX else copies[:2]
                seconds = best_seconds(lambda w: kernels.matmul(x, w), walked, args.rounds)
                single_step = seconds if t == 1 else single_step
                batch_gain = f"{t * single_step / seconds:5.1f}" if single_step and t > 1 else ""
                print(
                    f"{shape:>10} {name:>5} {t:>4} {seconds * 1e3:8.3f} {matrix.nbytes / seconds / 1e9:6.1f}"
                    f" {plain['memcpy'] / seconds:9.2f} {plain[parallel] / seconds:8.2f}"
                    f" {2 * t * rows * cols / seconds / 1e9:7.1f} {t / seconds:8.0f} {batch_gain:>5}"
                )
            print(
                f"{'':>10} {name:>5} plain read: memcpy {matrix.nbytes / plain['memcpy'] / 1e9:.1f} GB/s,"
                f" on {parallel}s {matrix.nbytes / plain[parallel] / 1e9:.1f} GB/s"
            )
            del copies


def plain_read_seconds(copies, rounds, threads):
    """Seconds to read one copy's resident bytes with numpy's memcpy (np.copyto into a scratch buffer):
    on one thread, and on `threads` Python threads each copying its share of every array."""
    arrays = [[a.reshape(-1) for a in (w.d, w.dmin, w.scales, w.qs, w.qh) if a.size] for w in copies]
    scratch = [np.empty_like(a) for a in arrays[0]]
    one = best_seconds(lambda group: [np.copyto(s, a) for s, a in zip(scratch, group)], arrays, rounds)
    shares = []  # per copy: (source slice, target slice) of every thread's share of every array
    for group in arrays:
        bounds = [np.linspace(0, a.size, threads + 1).astype(int) for a in group]
        shares.append([(a[lo:hi], s[lo:hi])
                       for a, s, b in zip(group, scratch, bounds) for lo, hi in zip(b[:-1], b[1:])])
    with ThreadPoolExecutor(threads) as pool:
        many = best_seconds(lambda jobs: list(pool.map(lambda job: np.copyto(job[1], job[0]), jobs)), shares, rounds)
    return {"memcpy": one, f"{threads}-thread": many}


if __name__ == "__main__":
    main()
