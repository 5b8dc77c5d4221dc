"""How fast the quantized-matrix kernels stream their weights, per quant type, against a plain read.

    .venv/bin/python bench/kernels.py [--types Q4_K,Q6_K] [--shapes 8960x1536,1536x576] [--steps 1,8,512]
                                      [--rounds 5] [--threads N] [--hot]

For each shape [rows, cols] (out_features x in_features) and type, builds random valid blocks, then times
inference.core.kernels.matmul(x [T, cols], W) for each T: each call best of --rounds, then the median over
the copies of the matrix. Unless --hot, a round walks through enough copies to exceed the L3 cache
several times, so the weights come from DRAM as in a real decode step (a model is far bigger than L3).
Prints per (shape, type, T):

    ms      time of one matmul
    GB/s    resident weight bytes / time
    vs read that rate / the plain read of the same bytes (np.copyto into a scratch buffer: numpy's
            memcpy, one thread; and the same split over --threads threads): the share of the bandwidth reached
    GFLOP/s 2 T rows cols / time
    tok/s   T / time: tokens (rows of x) per second through this one matrix
    xT=1    for T > 1: T * time(T=1) / time(T): how much better a batch of T is than T single steps
    vs fl   for the types with integer dots (kernels.INT_DOT_MAX_STEPS), T <= FEW_ROWS_MAX: the float kernel's
            time / the integer-dot kernel's, both timed in the same rounds whichever one matmul picks at this T
            (how much the integer dots gain: the basis of INT_DOT_MAX_STEPS)

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

COLD_BYTES = 128 << 20  # copies of a matrix walked per round: 4x the 32 MB L3
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
    steps = [int(s) for s in args.steps.split(",")]
    where = "hot (one copy)" if args.hot else "cold (weights from DRAM)"
    print(f"threads {args.threads}, {where}, each call best of {args.rounds}")
    print(f"{'shape':>10} {'type':>5} {'T':>4} {'ms':>8} {'GB/s':>6} {'vs memcpy':>9} {'vs n-thr':>8}"
          f" {'GFLOP/s':>7} {'tok/s':>8} {'xT=1':>5} {'vs fl':>5}")
    with ThreadPoolExecutor(args.threads) as pool:
        for shape in args.shapes.split(","):
            bench_shape(shape, args, steps, pool)


def bench_shape(shape, args, steps, pool):
    """Times every type at every T, and the plain reads, each call best of args.rounds. The rounds
    interleave all of them, so a stretch of time when another process takes the cores costs one
    round of each rather than all rounds of one type."""
    rows, cols = (int(n) for n in shape.split("x"))
    rng = np.random.default_rng(0)
    xs = {t: rng.standard_normal((t, cols), dtype=np.float32) for t in steps}  # [T, cols] each
    timed = {}  # (type name, what) -> (fn, copies walked); what: T, "memcpy" or "n-thread"
    sizes = {}
    for name in args.types.split(","):
        qtype = GGMLQuantizationType[name]
        block_size = GGML_QUANT_SIZES[qtype][0]
        if cols % block_size:
            print(f"{shape:>10} {name:>5}    -  {cols} columns are not whole {block_size}-weight blocks")
            continue
        raw = random_matrix_bytes(qtype, rows, cols, rng)
        copies = [QuantMatrix.from_gguf_bytes(qtype, (rows, cols), raw)]
        copies += [QuantMatrix.from_gguf_bytes(qtype, (rows, cols), raw)
                   for _ in range(0 if args.hot else COLD_BYTES // copies[0].nbytes)]
        sizes[name] = copies[0].nbytes
        memcpy_one, memcpy_many = plain_reads(copies, args.threads, pool)
        timed[name, "memcpy"] = memcpy_one, copies
        timed[name, "n-thread"] = memcpy_many, copies
        for t in steps:
            # Prefill is bound by flops, not by where the weights come from: two copies are enough.
            walked = copies if t <= kernels.FEW_ROWS_MAX else copies[:2]
            timed[name, t] = (lambda w, x=xs[t]: kernels.matmul(x, w)), walked
            if qtype in kernels.INT_DOT_MAX_STEPS and cols % kernels.BLOCK32_UNIT == 0 and t <= kernels.FEW_ROWS_MAX:
                for what, kernel in (("int", kernels.int_dot_kernel), ("float", kernels.few_rows_kernel)):
                    timed[name, what, t] = (lambda w, x=xs[t], k=kernel: few_rows(k, x, w, args.threads)), walked
    best = {key: [float("inf")] * len(copies) for key, (_, copies) in timed.items()}
    for _ in range(args.rounds):
        for key, (fn, copies) in timed.items():
            for i, copy in enumerate(copies):  # each copy is cold: the others evicted it since its last visit
                started = time.perf_counter()
                fn(copy)
                best[key][i] = min(best[key][i], time.perf_counter() - started)
    # The median over copies: a copy whose every round met another process's burst is an outlier.
    seconds = {key: float(np.median(times)) for key, times in best.items()}
    for name, nbytes in sizes.items():
        for t in steps:
            took = seconds[name, t]
            batch_gain = f"{t * seconds[name, 1] / took:5.1f}" if t > 1 and (name, 1) in seconds else ""
            paired = (name, "int", t) in seconds
            float_ratio = f"{seconds[name, 'float', t] / seconds[name, 'int', t]:5.2f}" if paired else ""
            print(
                f"{shape:>10} {name:>5} {t:>4} {took * 1e3:8.3f} {nbytes / took / 1e9:6.1f}"
                f" {seconds[name, 'memcpy'] / took:9.2f} {seconds[name, 'n-thread'] / took:8.2f}"
                f" {2 * t * rows * cols / took / 1e9:7.1f} {t / took:8.0f} {batch_gain:>5} {float_ratio:>5}"
            )
        print(
            f"{'':>10} {name:>5} plain read: memcpy {nbytes / seconds[name, 'memcpy'] / 1e9:.1f} GB/s,"
            f" on {args.threads} threads {nbytes / seconds[name, 'n-thread'] / 1e9:.1f} GB/s"
        )


def few_rows(kernel, x, w, threads):
    """x @ W.T by one of matmul's few-row kernels (integer dots or float), whichever matmul would pick."""
    out = np.empty((x.shape[0], w.rows), np.float32)  # [T, rows]
    kernel(*kernels.arrays(w), x, out, min(w.rows, 4 * threads))
    return out


def plain_reads(copies, threads, pool):
    """(one thread, `threads` threads) functions reading a copy's resident bytes with numpy's memcpy
    (np.copyto into a scratch buffer); the threaded one gives each thread a share of every array."""
    scratch = [np.empty_like(a.reshape(-1)) for a in resident_arrays(copies[0])]

    def one(w):
        for target, source in zip(scratch, resident_arrays(w)):
            np.copyto(target, source)

    def shares(w):
        for target, source in zip(scratch, resident_arrays(w)):
            bounds = np.linspace(0, source.size, threads + 1).astype(int)
            yield from ((source[lo:hi], target[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:]))

    def many(w):
        list(pool.map(lambda share: np.copyto(share[1], share[0]), list(shares(w))))

    return one, many


def resident_arrays(w):
    return [a.reshape(-1) for a in (w.d, w.dmin, w.scales, w.qs, w.qh) if a.size]


if __name__ == "__main__":
    main()
