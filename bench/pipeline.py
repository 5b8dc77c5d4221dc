"""Distributed inference performance: a 3-stage pipeline of `manage.py node` processes against the
single-process engine, same model, prompt and greedy decoding, all measured in one run.

    .venv/bin/python bench/pipeline.py [--tokens 48] [--model NAME or PATH.gguf] [--runs 3]
    # needs smollm2-135m-instruct in the cache: manage.py models pull smollm2-135m-instruct

1. Decode tok/s of one request through 3 stages, against the single-process engine (goal >= 0.9x).
2. Per-hop overhead in ms: the wait (queue + transfer) a stage sees per token, and what the pipeline
   adds per token beyond the stages' compute, divided by the hops.
3. Aggregate tok/s of 8 concurrent requests through the pipeline, against one request (goal >= 4x).
4. Time to first token of a 600-token prompt, pipelined prefill (one message per chunk, stages reading
   different chunks at once) against the prompt sent whole (each stage reads all of it, then the next),
   best of --runs each, with the per-stage timeline of the best pipelined run.
5. When network namespaces work: 1-4 again with every node behind a tc netem link of 1 Gbit/s and
   0.5 ms delay (a Raspberry Pi LAN).
"""
import argparse
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from inference.cluster.coordinator import Coordinator  # noqa: E402
from inference.core import kernels  # noqa: E402
from inference.core.engine import Engine  # noqa: E402
from inference.core.sampling import SamplingParams  # noqa: E402
from inference.core.scheduler import PREFILL_BLOCK_TOKENS  # noqa: E402
from tests.inference.cluster_lab import ClusterLab, namespaces_work, netem_works  # noqa: E402

TOKEN = "bench-cluster-token"
CONTEXT_LENGTH = 1024
CONCURRENT_REQUESTS = 8
LONG_PROMPT_TOKENS = 600
PROMPTS = [
    "Tell me a story about a cat.",
    "Explain how a bicycle works.",
    "Write a poem about the sea.",
    "What is the capital of France and why?",
    "Describe a day in the life of a farmer.",
    "How do airplanes stay in the air?",
    "Give me three tips for learning to cook.",
    "Why is the sky blue?",
]
PI_LAN_LINK = ["netem", "rate", "1gbit", "delay", "0.5ms"]
# Without netem (not built into some VM kernels) only the rate can be shaped, with a token bucket.
RATE_ONLY_LINK = ["tbf", "rate", "1gbit", "burst", "256kb", "latency", "5ms"]


def chat_prompt(tokenizer, text):
    return tokenizer.encode_chat([{"role": "user", "content": text}])


def decode_rate(generation):
    list(generation)
    return generation.stats.decode_tok_s


def aggregate_rate(coordinator, prompts, tokens):
    """Generated tokens per second of wall time, prefill included, over concurrent requests; and the
    mean rows per forward call at each stage."""
    started = time.perf_counter()
    generation = coordinator.generate_batch(prompts, tokens, SamplingParams())
    list(generation)
    rate = generation.stats.generated_tokens / (time.perf_counter() - started)
    say_recoveries(generation, f"{len(prompts)} request(s)")
    return rate, [stage.per_token()["batch"] for stage in generation.stats.stages]


def say_recoveries(generation, what):
    """A stage declared dead mid-run (a machine too loaded to answer in time) makes the run's figures meaningless."""
    for recovery in generation.stats.recoveries:
        print(f"WARNING: {what}: {', '.join(recovery['dead'])} declared dead ({recovery['cause']}); re-planned and replayed")


def long_prompt(tokenizer):
    """LONG_PROMPT_TOKENS tokens of running text."""
    text = " ".join(f"Note {index}: the lighthouse on island {index} is painted a colour nobody remembers." for index in range(200))
    prompt = tokenizer.encode(text)[:LONG_PROMPT_TOKENS]
    assert len(prompt) == LONG_PROMPT_TOKENS
    return prompt


def best_ttft(coordinator, prompt, pipelined, runs):
    """The fastest of `runs` first tokens of the prompt, and that run's prefill timeline."""
    coordinator.pipelined_prefill = pipelined
    best = None
    for _ in range(runs):
        generation = coordinator.generate(prompt, 1, SamplingParams())
        list(generation)
        say_recoveries(generation, f"TTFT, {'pipelined' if pipelined else 'sent whole'}")
        if best is None or generation.stats.ttft_s < best.stats.ttft_s:
            best = generation
    coordinator.pipelined_prefill = True
    return best.stats.ttft_s, best.stats.prefill_timeline


def print_timeline(timeline, route):
    """One row per stage: when it started and finished each chunk, ms after the prompt was sent."""
    parts = sorted({entry["part"] for entry in timeline})
    rows = {entry["part"]: entry["rows"] for entry in timeline if entry["node"] == route[0]["node"]}
    print("| stage | " + " | ".join(f"chunk {part} ({rows[part]} tokens)" for part in parts) + " |")
    print("|---|" + "---|" * len(parts))
    for stage in route:
        spans = {entry["part"]: entry for entry in timeline if entry["node"] == stage["node"]}
        cells = [f"{spans[part]['started_s'] * 1000:.0f}–{spans[part]['finished_s'] * 1000:.0f} ms" for part in parts]
        print(f"| {stage['node']} layers {stage['layers']} | " + " | ".join(cells) + " |")


def model_path_of(name_or_path):
    from inference.model_files import DEFAULT_MODEL, cached_model_path

    if name_or_path and Path(name_or_path).is_file():
        return Path(name_or_path)
    name = name_or_path or DEFAULT_MODEL
    path = cached_model_path(name)
    if path is None:
        sys.exit(f"{name} is not in the model cache: run manage.py models pull {name}")
    return path


def measure_pipeline(label, model_path, tokens, single_tok_s, node_threads, runs, micro_batches=None, link=None):
    work_dir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
    env = {"VAR_DIR": str(work_dir), "DATABASE_URL": f"sqlite:///{work_dir / 'bench.sqlite3'}"}
    if node_threads:
        env["KOTATSU_THREADS"] = str(node_threads)
    # The nodes' Celery workers look at their job tables when they start.
    migrate = [sys.executable, str(PROJECT_DIR / "manage.py"), "migrate", "--verbosity", "0"]
    subprocess.run(migrate, env={**os.environ, **env}, cwd=PROJECT_DIR, check=True)
    with ClusterLab(work_dir, TOKEN, env=env, link=link) as lab:
        lab.start_nodes("stage-a", "stage-b", "stage-c")
        coordinator = Coordinator(lab.client, TOKEN, model_path, context_length=CONTEXT_LENGTH, n_nodes=3, micro_batches=micro_batches)
        prompt = chat_prompt(coordinator.tokenizer, PROMPTS[0])
        list(coordinator.generate(prompt, 4, SamplingParams()))  # stages load their layers
        generation = coordinator.generate(prompt, tokens, SamplingParams())
        pipeline_tok_s = decode_rate(generation)
        say_recoveries(generation, "decode, 1 request")
        stages = [stage.per_token() for stage in generation.stats.stages]
        one_request, _ = aggregate_rate(coordinator, [prompt], tokens)
        concurrent = [chat_prompt(coordinator.tokenizer, text) for text in PROMPTS[:CONCURRENT_REQUESTS]]
        # The stages' first few-row steps compile kernels for those shapes (seconds, more than a step's deadline).
        list(coordinator.generate_batch(concurrent, 4, SamplingParams()))
        many, batches = aggregate_rate(coordinator, concurrent, tokens)
        long = long_prompt(coordinator.tokenizer)
        pipelined_s, timeline = best_ttft(coordinator, long, True, runs)
        whole_s, whole_timeline = best_ttft(coordinator, long, False, runs)
        route = generation.stats.plans[-1]
    hops = len(stages) + 1  # coordinator -> stage 1 -> ... -> last stage -> coordinator
    added_ms = 1000 / pipeline_tok_s - sum(stage["compute_ms"] for stage in stages)
    print(f"\n## {label} (namespaces: {lab.use_namespaces}, BLAS threads per node: {node_threads or 'default'})")
    print(f"| 3-stage decode, 1 request | {pipeline_tok_s:.2f} tok/s | single process {single_tok_s:.2f} tok/s | {pipeline_tok_s / single_tok_s:.2f}x (goal >= 0.9) |")
    waits = ", ".join(f"{stage['wait_ms']:.2f}" for stage in stages)
    print(f"| per-hop overhead | {added_ms / hops:.2f} ms (pipeline time beyond compute, over {hops} hops) | stage waits {waits} ms | |")
    print(f"| {CONCURRENT_REQUESTS} concurrent requests | {many:.2f} tok/s aggregate | 1 request {one_request:.2f} tok/s | {many / one_request:.2f}x (goal >= 4) |")
    for stage in stages:
        print(
            f"|   {stage['node']} layers {stage['layers']} | {stage['compute_ms']:.2f} ms compute/token | "
            f"{stage['bytes_in']} B in, {stage['bytes_out']} B out per token | |"
        )
    print(f"|   batch rows per stage call, {CONCURRENT_REQUESTS} requests | {', '.join(str(b) for b in batches)} | | |")
    print(
        f"| TTFT, {LONG_PROMPT_TOKENS}-token prompt, best of {runs} | pipelined ({PREFILL_BLOCK_TOKENS}-token chunks) {pipelined_s:.3f} s | "
        f"sent whole {whole_s:.3f} s | {pipelined_s / whole_s:.2f}x |"
    )
    print(f"\nPipelined prefill, per-stage timeline of the best run (TTFT {pipelined_s:.3f} s):\n")
    print_timeline(timeline, route)
    print(f"\nThe prompt sent whole, per-stage timeline of the best run (TTFT {whole_s:.3f} s):\n")
    print_timeline(whole_timeline, route)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--model", help="catalog name in the model cache or a .gguf path (default: the default model)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each TTFT measurement; the best counts")
    parser.add_argument("--micro-batches", type=int, help="groups the concurrent requests travel in (default: one per stage)")
    parser.add_argument(
        "--node-threads", type=int, help="BLAS threads per node and for the reference (default: one per core)"
    )
    parser.add_argument("--unshaped-only", action="store_true", help="skip the shaped-link measurement")
    args = parser.parse_args()
    model_path = model_path_of(args.model)

    engine = Engine(model_path, context_length=CONTEXT_LENGTH)
    prompt = chat_prompt(engine.tokenizer, PROMPTS[0])
    # The reference gets the same threads as each node, so that the ratio compares pipelines, not thread counts.
    kernels.set_threads(args.node_threads)
    decode_rate(engine.generate(prompt, 4, SamplingParams()))  # warm-up
    single_tok_s = decode_rate(engine.generate(prompt, args.tokens, SamplingParams()))
    del engine

    threads = args.node_threads
    measure_pipeline("unshaped links", model_path, args.tokens, single_tok_s, threads, args.runs, args.micro_batches)
    if args.unshaped_only:
        return
    if namespaces_work() and netem_works():
        label = "1 Gbit/s, 0.5 ms links (tc netem)"
        measure_pipeline(label, model_path, args.tokens, single_tok_s, threads, args.runs, args.micro_batches, PI_LAN_LINK)
    elif namespaces_work():
        label = "1 Gbit/s links (tc tbf: this kernel has no netem, so no added 0.5 ms delay)"
        measure_pipeline(label, model_path, args.tokens, single_tok_s, threads, args.runs, args.micro_batches, RATE_ONLY_LINK)
    else:
        print("\nnetwork namespaces do not work here: no netem measurement")


if __name__ == "__main__":
    main()
