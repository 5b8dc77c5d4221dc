"""Distributed inference performance: a 3-stage pipeline of `manage.py node` processes against the
single-process engine, same model, prompt and greedy decoding, all measured in one run.

    .venv/bin/python bench/pipeline.py [--tokens 48] [--model NAME or PATH.gguf] [--runs 3]
    # needs smollm2-135m-instruct in the cache: manage.py models pull smollm2-135m-instruct

1. Decode tok/s of one request through 3 stages, against the single-process engine (goal >= 0.9x): the two
   alternate --decode-rounds times and the best of each counts (other work on a shared machine slows either).
2. Per-hop overhead in ms: the wait (queue + transfer) a stage sees per token, and what the pipeline
   adds per token beyond the stages' compute, divided by the hops; and, measured inside the processes (so
   less at the mercy of the machine's load), where a decode token's time goes: each hop's transfer and
   wake-up, each stage's Python around its forward call, the coordinator's per-token work, the size of each
   message, what encoding and decoding one costs, and the context switches (wake-ups) of every process per token.
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
import uuid
from functools import partial
from pathlib import Path

import numpy as np


PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from inference.cluster import pipeline_protocol as protocol  # noqa: E402
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


def context_switches(pid):
    """(voluntary, involuntary) context switches of every thread of a process so far: its sleeps (each ended by a
    wake-up) and its preemptions by other work."""
    counts = np.zeros(2, dtype=np.int64)
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    counts[0] += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    counts[1] += int(line.split()[1])
        except OSError:  # a thread that ended meanwhile
            pass
    return counts


def codec_microseconds(d_model, route, runs=2000):
    """Encoding (JSON header, HMAC-SHA256) and decoding (HMAC check, JSON) a decode step's message between stages:
    a header like the stepper's, a trace entry, and one row of hidden states; best of three rounds each."""
    header = {
        "kind": "forward", "run": uuid.uuid4().hex, "epoch": 1, "model": "x" * 80, "n_layers": 30, "reply_to": "kotatsu:run:" + "x" * 40,
        "route": route, "hop": 1, "context_length": CONTEXT_LENGTH, "sent_at": time.time(),
        "links": [["10.0.0.2", 40000]] * len(route), "reply_link": ["10.0.0.1", 40000],
        "items": [{"seq": 0, "chunks": [1], "trace": [{"node": "stage-a", "started_at": time.time(), "compute_ms": 8.0, "wait_ms": 0.1,
                                                       "bytes_in": 8, "bytes_out": 4 * d_model, "batch": 1, "around_ms": 0.2, "message_bytes": 800}]}],
    }
    payload = np.zeros((1, d_model), dtype=np.float32).tobytes()
    message = protocol.encode(TOKEN, header, payload)
    timings = []
    for work in (lambda: protocol.encode(TOKEN, header, payload), lambda: protocol.decode(TOKEN, message)):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(runs):
                work()
            best = min(best, (time.perf_counter() - started) / runs * 1e6)
        timings.append(best)
    return len(message), timings


def print_breakdown(generation, switches, tokens, d_model):
    """Where a decode token's time goes, from the processes' own clocks, and their wake-ups per token."""
    stats = generation.stats
    stages = [stage.per_token() for stage in stats.stages]
    coordinator = stats.per_token_coordinator()
    print(f"\nPer decode token, measured inside the processes ({tokens} tokens, 1 request):\n")
    print(
        "| hop or process | transfer + wake-up (ms) | Python around forward (ms) | forward (ms) | message received (B) "
        "| sleeps + preemptions per token |"
    )
    print("|---|---|---|---|---|---|")
    for stage in stages:
        print(
            f"| -> {stage['node']} {stage['layers']} | {stage['wait_ms']:.3f} | {stage['around_ms']:.3f} | {stage['compute_ms']:.2f} | "
            f"{stage['message_bytes']} | {per_token(switches[stage['node']], tokens)} |"
        )
    print(
        f"| -> coordinator (token) | {coordinator['reply_wait_ms']:.3f} | {coordinator['coordinator_ms']:.3f} (scheduler + stepper, token to next step) | | "
        f"{coordinator['reply_bytes']} | {per_token(switches['coordinator'], tokens)} |"
    )
    print(f"| Redis | | | | | {per_token(switches['redis'], tokens)} |")
    size, (encode_us, decode_us) = codec_microseconds(d_model, stats.plans[-1])
    print(f"\nEncoding a {size}-byte stage-to-stage message (JSON header, HMAC-SHA256): {encode_us:.1f} µs; decoding and checking it: {decode_us:.1f} µs.")


def per_token(switches, tokens):
    voluntary, involuntary = switches / tokens
    return f"{voluntary:.1f} + {involuntary:.1f}"


def best_decode(engine, coordinator, prompt, tokens, rounds, pids):
    """Single-process and pipeline decode alternating `rounds` times: the best single-process rate, and the fastest
    pipeline generation with its processes' context switches."""
    best_single, best = 0.0, None
    for _ in range(rounds):
        best_single = max(best_single, decode_rate(engine.generate(prompt, tokens, SamplingParams())))
        before = {name: context_switches(pid) for name, pid in pids.items()}
        generation = coordinator.generate(prompt, tokens, SamplingParams())
        rate = decode_rate(generation)
        say_recoveries(generation, "decode, 1 request")
        if best is None or rate > best[0]:
            best = (rate, generation, {name: context_switches(pid) - before[name] for name, pid in pids.items()})
    return best_single, *best


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


def measure_pipeline(label, model_path, engine, tokens, node_threads, runs, decode_rounds, micro_batches=None, link=None):
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
        pids = {name: process.pid for name, process in lab.nodes.items()} | {"redis": lab.redis_process.pid, "coordinator": os.getpid()}
        single_tok_s, pipeline_tok_s, generation, switches = best_decode(engine, coordinator, prompt, tokens, decode_rounds, pids)
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
        d_model = coordinator.model.config.d_model
    hops = len(stages) + 1  # coordinator -> stage 1 -> ... -> last stage -> coordinator
    added_ms = 1000 / pipeline_tok_s - sum(stage["compute_ms"] for stage in stages)
    print(f"\n## {label} (namespaces: {lab.use_namespaces}, BLAS threads per node: {node_threads or 'default'})")
    print(f"| 3-stage decode, 1 request, best of {decode_rounds} | {pipeline_tok_s:.2f} tok/s | single process {single_tok_s:.2f} tok/s | {pipeline_tok_s / single_tok_s:.2f}x (goal >= 0.9) |")
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
    print_breakdown(generation, switches, tokens, d_model)


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
    parser.add_argument("--decode-rounds", type=int, default=3, help="alternating single-process and pipeline decode runs")
    args = parser.parse_args()
    model_path = model_path_of(args.model)

    engine = Engine(model_path, context_length=CONTEXT_LENGTH)
    prompt = chat_prompt(engine.tokenizer, PROMPTS[0])
    # The reference gets the same threads as each node, so that the ratio compares pipelines, not thread counts.
    kernels.set_threads(args.node_threads)
    decode_rate(engine.generate(prompt, 4, SamplingParams()))  # warm-up

    threads = args.node_threads
    measure = partial(measure_pipeline, model_path=model_path, engine=engine, tokens=args.tokens, node_threads=threads, runs=args.runs,
                      decode_rounds=args.decode_rounds, micro_batches=args.micro_batches)
    measure("unshaped links")
    if args.unshaped_only:
        return
    if namespaces_work() and netem_works():
        label = "1 Gbit/s, 0.5 ms links (tc netem)"
        measure(label, link=PI_LAN_LINK)
    elif namespaces_work():
        label = "1 Gbit/s links (tc tbf: this kernel has no netem, so no added 0.5 ms delay)"
        measure(label, link=RATE_ONLY_LINK)
    else:
        print("\nnetwork namespaces do not work here: no netem measurement")


if __name__ == "__main__":
    main()
