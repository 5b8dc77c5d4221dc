"""Distributed inference performance: a 3-stage pipeline of `manage.py node` processes against the
single-process engine, same model, prompt and greedy decoding, all measured in one run.

    .venv/bin/python bench/pipeline.py [--tokens 48] [--model PATH.gguf]
    # needs smollm2-135m-instruct in the cache: manage.py models pull smollm2-135m-instruct

1. Decode tok/s of one request through 3 stages, against the single-process engine (goal >= 0.85x).
2. Per-hop overhead in ms: the wait (queue + transfer) a stage sees per token, and what the pipeline
   adds per token beyond the stages' compute, divided by the hops.
3. Aggregate tok/s of 8 concurrent requests through the pipeline, against one request (goal >= 4x).
4. When network namespaces work: 1-3 again with every node behind a tc netem link of 1 Gbit/s and
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
from tests.inference.cluster_lab import ClusterLab, namespaces_work, netem_works  # noqa: E402

TOKEN = "bench-cluster-token"
CONTEXT_LENGTH = 1024
CONCURRENT_REQUESTS = 8
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
    return rate, [stage.per_token()["batch"] for stage in generation.stats.stages]


def default_model():
    from inference.model_files import DEFAULT_MODEL, cached_model_path

    path = cached_model_path(DEFAULT_MODEL)
    if path is None:
        sys.exit(f"{DEFAULT_MODEL} is not in the model cache: run manage.py models pull {DEFAULT_MODEL}")
    return path


def measure_pipeline(label, model_path, tokens, single_tok_s, node_threads, link=None):
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
        coordinator = Coordinator(lab.client, TOKEN, model_path, context_length=CONTEXT_LENGTH, n_nodes=3)
        prompt = chat_prompt(coordinator.tokenizer, PROMPTS[0])
        list(coordinator.generate(prompt, 4, SamplingParams()))  # stages load their layers
        generation = coordinator.generate(prompt, tokens, SamplingParams())
        pipeline_tok_s = decode_rate(generation)
        stages = [stage.per_token() for stage in generation.stats.stages]
        one_request, _ = aggregate_rate(coordinator, [prompt], tokens)
        many, batches = aggregate_rate(
            coordinator, [chat_prompt(coordinator.tokenizer, text) for text in PROMPTS[:CONCURRENT_REQUESTS]], tokens
        )
    hops = len(stages) + 1  # coordinator -> stage 1 -> ... -> last stage -> coordinator
    added_ms = 1000 / pipeline_tok_s - sum(stage["compute_ms"] for stage in stages)
    print(f"\n## {label} (namespaces: {lab.use_namespaces}, BLAS threads per node: {node_threads or 'default'})")
    print(f"| 3-stage decode, 1 request | {pipeline_tok_s:.2f} tok/s | single process {single_tok_s:.2f} tok/s | {pipeline_tok_s / single_tok_s:.2f}x (goal >= 0.85) |")
    waits = ", ".join(f"{stage['wait_ms']:.2f}" for stage in stages)
    print(f"| per-hop overhead | {added_ms / hops:.2f} ms (pipeline time beyond compute, over {hops} hops) | stage waits {waits} ms | |")
    print(f"| {CONCURRENT_REQUESTS} concurrent requests | {many:.2f} tok/s aggregate | 1 request {one_request:.2f} tok/s | {many / one_request:.2f}x (goal >= 4) |")
    for stage in stages:
        print(
            f"|   {stage['node']} layers {stage['layers']} | {stage['compute_ms']:.2f} ms compute/token | "
            f"{stage['bytes_in']} B in, {stage['bytes_out']} B out per token | |"
        )
    print(f"|   batch rows per stage call, {CONCURRENT_REQUESTS} requests | {', '.join(str(b) for b in batches)} | | |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--model", type=Path)
    parser.add_argument(
        "--node-threads", type=int, help="BLAS threads per node and for the reference (default: one per core)"
    )
    parser.add_argument("--unshaped-only", action="store_true", help="skip the shaped-link measurement")
    args = parser.parse_args()
    model_path = args.model or default_model()

    engine = Engine(model_path, context_length=CONTEXT_LENGTH)
    prompt = chat_prompt(engine.tokenizer, PROMPTS[0])
    # The reference gets the same threads as each node, so that the ratio compares pipelines, not thread counts.
    kernels.set_threads(args.node_threads)
    decode_rate(engine.generate(prompt, 4, SamplingParams()))  # warm-up
    single_tok_s = decode_rate(engine.generate(prompt, args.tokens, SamplingParams()))
    del engine

    threads = args.node_threads
    measure_pipeline("unshaped links", model_path, args.tokens, single_tok_s, threads)
    if args.unshaped_only:
        return
    if namespaces_work() and netem_works():
        label = "1 Gbit/s, 0.5 ms links (tc netem)"
        measure_pipeline(label, model_path, args.tokens, single_tok_s, threads, link=PI_LAN_LINK)
    elif namespaces_work():
        label = "1 Gbit/s links (tc tbf: this kernel has no netem, so no added 0.5 ms delay)"
        measure_pipeline(label, model_path, args.tokens, single_tok_s, threads, link=RATE_ONLY_LINK)
    else:
        print("\nnetwork namespaces do not work here: no netem measurement")


if __name__ == "__main__":
    main()
