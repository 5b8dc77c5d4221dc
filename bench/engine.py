"""Our engine against llama.cpp and transformers on the same GGUF, same thread count, in one run (issue 12).

    .venv/bin/python bench/engine.py [--model NAME_OR_PATH ...] [--threads 2] [--runs 3] [--decode-tokens 128]
    # default models: smollm2-135m-instruct and qwen2.5-coder-1.5b-instruct from the model cache

llama.cpp runs through llama-cpp-python in the bench-only environment .venv-bench, which bench/llama_cpp_env.sh
creates (~12 min of compiling on 2 cores the first time). Each engine runs in its own child process, so peak
RSS is its own. Rates are the best of --runs runs, so one hiccup of this shared VM does not decide a ratio.
Prints, per model, with the goals of issue 12:
  1. decode tok/s, greedy, --decode-tokens tokens: ours vs llama.cpp (goal >= 1.0x) and transformers,
  2. prefill tok/s on a ~500-token prompt: ours vs llama.cpp (goal >= 1.0x) and transformers,
  3. 8 sequences decoding together: our aggregate tok/s vs our one sequence (goal >= 5x),
  4. peak RSS: ours vs the GGUF file + KV cache + 150 MB (goal <= 1.15x), beside llama.cpp's,
and once: the kernels' first-use compile time (an empty numba cache), and the load average.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

BENCH_PYTHON = PROJECT_DIR / ".venv-bench" / "bin" / "python"
DEFAULT_MODELS = ("smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct")
CONTEXT_LENGTH = 1024
BATCH = 8
MB = 2**20
DECODE_PROMPT = "Write a long story about a fox who learns to sail:"
PREFILL_PARAGRAPH = (
    "The history of navigation is the story of people learning to read the sky, the sea and the coast. "
    "Early sailors kept land in sight, steering by headlands and river mouths, and later by the sun and stars. "
)
BATCH_PROMPTS = [
    "Write a long story about a fox who learns to sail:",
    "Describe, step by step, how bread is baked in a village bakery:",
    "Explain to a child how rivers reach the sea, with many examples:",
    "Tell the history of a small mountain town over three centuries:",
    "Write a long letter from a lighthouse keeper to her brother:",
    "Describe a journey by train across a wide continent in winter:",
    "Write a detailed guide to growing tomatoes on a balcony:",
    "Tell a long tale about a clockmaker and a mysterious customer:",
]


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def prefill_prompt(tokenize, target_tokens: int = 500) -> list[int]:
    return tokenize(PREFILL_PARAGRAPH * 40)[:target_tokens]


def measure_ours(model: Path, decode_tokens: int, runs: int) -> dict:
    from inference.core.engine import Engine
    from inference.core.kv_cache import KVCache
    from inference.core.sampling import SamplingParams

    engine = Engine(model, context_length=CONTEXT_LENGTH)
    greedy = SamplingParams()
    list(engine.generate(engine.tokenizer.encode("Hello"), 4, greedy))  # compiled kernels loaded from the cache

    prefill_ids = prefill_prompt(engine.tokenizer.encode)
    prefill_rates = []
    for _ in range(runs):
        prefill = engine.generate(prefill_ids, 1, greedy)
        list(prefill)
        prefill_rates.append(prefill.stats.prefill_tok_s)

    decode_rates = []
    for _ in range(runs):
        decode = engine.generate(engine.tokenizer.encode(DECODE_PROMPT), decode_tokens, greedy)
        list(decode)
        decode_rates.append(decode.stats.decode_tok_s)

    peak_rss = peak_rss_bytes()  # one sequence's: the batch below holds eight KV caches
    batch_rates = []
    for _ in range(runs):
        batch = engine.generate_batch([engine.tokenizer.encode(p) for p in BATCH_PROMPTS], decode_tokens, greedy)
        list(batch)
        batch_rates.append(batch.stats.decode_tok_s)

    config = engine.config
    return {
        "prefill_tokens": len(prefill_ids),
        "prefill_tok_s": max(prefill_rates),
        "decode_tok_s": max(decode_rates),
        "batch_decode_tok_s": max(batch_rates),
        "weight_bytes": engine.weights.n_bytes(),
        "kv_cache_bytes": KVCache.bytes_per_position(config.n_layers, config.n_kv_heads, config.head_dim) * CONTEXT_LENGTH,
        "peak_rss_bytes": peak_rss,
    }


def measure_llama_cpp(model: Path, decode_tokens: int, runs: int, threads: int) -> dict:
    """Runs inside .venv-bench: llama_cpp and numpy only."""
    from llama_cpp import Llama

    llm = Llama(str(model), n_ctx=CONTEXT_LENGTH, n_threads=threads, n_threads_batch=threads, n_batch=512, verbose=False)

    def tokenize(text):
        return llm.tokenize(text.encode(), add_bos=False)

    def timed_eval(tokens):
        started = time.perf_counter()
        llm.eval(tokens)
        return time.perf_counter() - started

    prefill_ids = prefill_prompt(tokenize)
    prefill_seconds = []
    for _ in range(runs):
        llm.reset()
        prefill_seconds.append(timed_eval(prefill_ids))

    decode_rates = []
    for _ in range(runs):
        llm.reset()
        llm.eval(tokenize(DECODE_PROMPT))
        started = time.perf_counter()
        for _ in range(decode_tokens):  # greedy, stop tokens ignored so every run decodes the same count
            llm.eval([llm.sample(temp=0.0)])
        decode_rates.append(decode_tokens / (time.perf_counter() - started))
    return {
        "prefill_tokens": len(prefill_ids),
        "prefill_tok_s": len(prefill_ids) / min(prefill_seconds),
        "decode_tok_s": max(decode_rates),
        "peak_rss_bytes": peak_rss_bytes(),
    }


def measure_transformers(model: Path, decode_tokens: int, runs: int, threads: int) -> dict:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    from inference.core.gguf_loader import read_gguf
    from inference.core.tokenizer import Tokenizer

    torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    tokenizer = Tokenizer(read_gguf(model))
    hf = AutoModelForCausalLM.from_pretrained(str(model.parent), gguf_file=model.name, dtype=torch.float32).eval()

    def generate_seconds(ids: list[int], new_tokens: int) -> float:
        inputs = torch.tensor([ids])
        started = time.perf_counter()
        hf.generate(inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        return time.perf_counter() - started

    with torch.inference_mode():
        decode_ids = tokenizer.encode(DECODE_PROMPT)
        generate_seconds(decode_ids, 2)  # warm-up
        first_token = min(generate_seconds(decode_ids, 1) for _ in range(runs))
        full = min(generate_seconds(decode_ids, decode_tokens + 1) for _ in range(runs))
        prefill_ids = torch.tensor([prefill_prompt(tokenizer.encode)])
        prefill_seconds = []
        for _ in range(runs):
            started = time.perf_counter()
            hf(prefill_ids)
            prefill_seconds.append(time.perf_counter() - started)
    return {
        "prefill_tokens": prefill_ids.shape[1],
        "prefill_tok_s": prefill_ids.shape[1] / min(prefill_seconds),
        "decode_tok_s": decode_tokens / (full - first_token),
        "peak_rss_bytes": peak_rss_bytes(),
    }


def measure_compile() -> dict:
    """Compile every kernel into an empty numba cache, as a node's first start does."""
    from inference.core import decode_attention

    return {"compile_s": decode_attention.warm_up()}


def run_child(python: Path, kind: str, args, model: Path, env=None) -> dict:
    command = [str(python), __file__, "--child", kind, "--model", str(model), "--threads", str(args.threads)]
    command += ["--decode-tokens", str(args.decode_tokens), "--runs", str(args.runs)]
    env = {**os.environ, "KOTATSU_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads), **(env or {})}
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def model_path(name_or_path: str) -> Path:
    if name_or_path.endswith(".gguf"):
        return Path(name_or_path)
    from inference.model_files import cached_model_path

    path = cached_model_path(name_or_path)
    if path is None:
        sys.exit(f"{name_or_path} is not in the model cache: run manage.py models pull {name_or_path}")
    return path


def report(name: str, model: Path, ours: dict, llama: dict, reference: dict | None) -> None:
    def row(name, value_of, goal):
        values = [value_of(ours), value_of(llama), value_of(reference) if reference else float("nan")]
        print(f"{name:30} {values[0]:10.1f} {values[1]:10.1f} {values[2]:13.1f} {values[0] / values[1]:13.2f}x  {goal}")

    print(f"\n{name} ({model.stat().st_size / MB:.0f} MiB file)")  # the cache names its files by sha256
    print(f"{'':30} {'ours':>10} {'llama.cpp':>10} {'transformers':>13} {'ours/llama.cpp':>14}  goal")
    row("decode tok/s", lambda side: side["decode_tok_s"], ">= 1.0x")
    row(f"prefill tok/s ({ours['prefill_tokens']} tokens)", lambda side: side["prefill_tok_s"], ">= 1.0x")
    row("peak RSS MiB", lambda side: side["peak_rss_bytes"] / MB, "(lower is better)")
    budget = model.stat().st_size + ours["kv_cache_bytes"] + 150 * MB
    print(
        f"our peak RSS is {ours['peak_rss_bytes'] / budget:.2f}x of file {model.stat().st_size / MB:.0f} MiB"
        f" + KV cache {ours['kv_cache_bytes'] / MB:.0f} MiB ({CONTEXT_LENGTH} positions) + 150 MiB (goal <= 1.15x);"
        f" weights resident {ours['weight_bytes'] / MB:.0f} MiB"
    )
    print(
        f"{BATCH} sequences together: {ours['batch_decode_tok_s']:.1f} tok/s aggregate ="
        f" {ours['batch_decode_tok_s'] / ours['decode_tok_s']:.2f}x one sequence (goal >= 5x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=None, help="catalog name or .gguf path; repeatable")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--decode-tokens", type=int, default=128)
    parser.add_argument("--no-transformers", action="store_true", help="skip the (slow) transformers side")
    parser.add_argument("--child", choices=["ours", "llama_cpp", "transformers", "compile"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        model = Path(args.model[0])
        measure = {
            "ours": lambda: measure_ours(model, args.decode_tokens, args.runs),
            "llama_cpp": lambda: measure_llama_cpp(model, args.decode_tokens, args.runs, args.threads),
            "transformers": lambda: measure_transformers(model, args.decode_tokens, args.runs, args.threads),
            "compile": measure_compile,
        }[args.child]
        print(json.dumps(measure()))
        return

    if not BENCH_PYTHON.exists():
        sys.exit(f"no llama.cpp reference: run bash bench/llama_cpp_env.sh first (creates {BENCH_PYTHON.parent.parent})")
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
    django.setup()
    models = {name: model_path(name) for name in (args.model or DEFAULT_MODELS)}
    with tempfile.TemporaryDirectory() as empty_cache:
        first = next(iter(models.values()))
        compile_s = run_child(Path(sys.executable), "compile", args, first, {"NUMBA_CACHE_DIR": empty_cache})["compile_s"]
    # And into the engine's own cache, as `make up` does: a child compiling there would count LLVM's ~100 MiB of
    # compiling in its peak RSS (measured: SmolLM2 515 MiB on a fresh machine, 409 once compiled).
    run_child(Path(sys.executable), "compile", args, first)
    print(f"{args.threads} threads, best of {args.runs} runs; kernels' first-use compile: {compile_s:.1f} s")
    for name, model in models.items():
        ours = run_child(Path(sys.executable), "ours", args, model)
        llama = run_child(BENCH_PYTHON, "llama_cpp", args, model)
        reference = None if args.no_transformers else run_child(Path(sys.executable), "transformers", args, model)
        report(name, model, ours, llama, reference)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
