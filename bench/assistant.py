"""Assistant performance through the real web server (`manage.py web`, uvicorn) and its /v1 API, each number
next to a reference measured in the same run.

    .venv/bin/python bench/assistant.py [--clients 50] [--seconds 60] [--max-tokens 16] [--busy-processes 0]
    .venv/bin/python bench/assistant.py --answer-model qwen2.5-coder-1.5b-instruct --clients 0   # TTFT with the 1.5B
    .venv/bin/python bench/assistant.py --clients 0 --samples 9   # TTFT alone, median and best of 9 each

1. Time to first token of a grounded question ("kotatsu": embedding, hybrid retrieval, prompt with sources,
   the LLM marked for answers on this node: SmolLM2, or --answer-model), streamed; goal <= 2 s with SmolLM2. Reference: the same question to the raw LLM (no retrieval,
   short prompt), so the ratio is the price of grounding. The test suite's questions find one or two short
   passages, so it is measured again with a question whose sources fill the whole source budget (a long
   training video added for the bench): the worst case of a grounded prompt.
2. N concurrent API clients asking grounded questions for S seconds: every status (goal: no 5xx), p50/p95
   latency and aggregate completion tok/s. Reference: one client alone for the same time. --clients 0 skips it.

It runs on a fresh VAR_DIR with its own SQLite database and embedded Redis, seeded with the test suite's
small knowledge base of three indexed videos plus that training video; models come from the shared model
cache. --busy-processes N keeps N other processes spinning on a core each meanwhile, standing in for a worker
transcribing on the same node.
"""
import argparse
import asyncio
import atexit
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="kotatsu-bench-")
atexit.register(shutil.rmtree, os.environ["VAR_DIR"], ignore_errors=True)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")

QUESTIONS = [
    "Where is the fire extinguisher in the kitchen?",
    "How much did revenue grow compared with the second quarter?",
    "How do I set up the company VPN on my laptop?",
    "What should I do with knives after use?",
    "Which market will we focus on next quarter?",
]
FULL_BUDGET_QUESTION = "What should we do when the fire alarm goes off?"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--busy-processes", type=int, default=0)
    parser.add_argument("--samples", type=int, default=5, help="grounded questions per TTFT figure")
    parser.add_argument("--answer-model", default="smollm2-135m-instruct",
                        help="the LLM marked to serve grounded answers (manage.py models use kotatsu NAME)")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)

    redis_process = start_redis()
    busy = []
    try:
        import django

        django.setup()
        base_url, api_key, web = serve_knowledge_base(args.answer_model)
        try:
            busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy_processes)]
            print(f"# bench/assistant.py on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
                  f"KOTATSU_THREADS={os.environ.get('KOTATSU_THREADS', 'unset (all cores)')}, "
                  f"{args.busy_processes} busy process(es), answers by {args.answer_model}")
            bench_time_to_first_token(base_url, api_key, args.answer_model, args.max_tokens, args.samples)
            if args.clients:
                bench_concurrent_clients(base_url, api_key, args)
        finally:
            for process in busy:
                process.kill()
            web.terminate()
            web.wait(timeout=30)
    finally:
        redis_process.terminate()


def start_redis():
    from inference.plumbing.embedded_redis import start_embedded_redis
    from tests.embedded_services import free_port

    port = free_port()
    var_dir = Path(os.environ["VAR_DIR"])
    process = start_embedded_redis(port, var_dir / "redis", var_dir / "redis.log")
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    return process


def serve_knowledge_base(answer_model):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from assistant.services import do_create_api_key
    from inference.models import ModelMark
    from inference.services import do_mark_model
    from tests.assistant.conftest import start_web_server
    from ingest.replica import rebuild_snapshot
    from tests.assistant.knowledge import FIRE_TRAINING, build_knowledge_base, indexed_video

    call_command("migrate", verbosity=0)
    do_mark_model(ModelMark.ANSWERS, answer_model)
    knowledge = build_knowledge_base()
    indexed_video(knowledge["source"], "fire-training", "Fire safety training", FIRE_TRAINING)
    rebuild_snapshot()
    user = get_user_model().objects.create_user("bench", password="bench pass phrase 42")
    api_key = do_create_api_key(user, "bench")[1]
    web, base_url = start_web_server(Path(os.environ["VAR_DIR"]) / "web.log")
    return base_url, api_key, web


def streamed_ttft(client, model, question, max_tokens):
    """(seconds from sending the request to the first content delta of the streamed answer, prompt tokens)."""
    body = {"model": model, "messages": [{"role": "user", "content": question}], "max_tokens": max_tokens,
            "stream": True, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    first = prompt_tokens = None
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                prompt_tokens = chunk["usage"]["prompt_tokens"]
            elif first is None and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - started
    return first, prompt_tokens


def median_ttft(client, model, questions, max_tokens):
    """(median TTFT, best TTFT, median prompt tokens) over the questions."""
    measured = [streamed_ttft(client, model, question, max_tokens) for question in questions]
    ttfts = [ttft for ttft, _ in measured]
    return statistics.median(ttfts), min(ttfts), statistics.median(tokens for _, tokens in measured)


def bench_time_to_first_token(base_url, api_key, answer_model, max_tokens, samples):
    headers = {"Authorization": f"Bearer {api_key}"}
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(samples)]
    with httpx.Client(base_url=base_url, headers=headers, timeout=600) as client:
        # The server warms up at start; these make sure the measurement does not overlap the end of it.
        streamed_ttft(client, "kotatsu", QUESTIONS[0], 1)
        streamed_ttft(client, answer_model, QUESTIONS[0], 1)
        grounded_s, grounded_best_s, grounded_tokens = median_ttft(client, "kotatsu", questions, max_tokens)
        raw_s, _, raw_tokens = median_ttft(client, answer_model, questions, max_tokens)
        full_s, full_best_s, full_tokens = median_ttft(client, "kotatsu", [FULL_BUDGET_QUESTION] * samples, max_tokens)
    for label, seconds, best_s in (("grounded", grounded_s, grounded_best_s),
                                   ("grounded, sources filling the budget", full_s, full_best_s)):
        verdict = "meets" if seconds <= 2.0 else "misses"
        print(f"TTFT {label} (kotatsu = {answer_model}, median of {samples}): {seconds:.2f} s, best {best_s:.2f} s "
              f"({verdict} the 2 s goal)")
    print(f"  prompt tokens (median): grounded {grounded_tokens:.0f}, budget filled {full_tokens:.0f}, raw {raw_tokens:.0f}; "
          f"raw LLM TTFT {raw_s:.2f} s; ratio grounded / raw {grounded_s / raw_s:.2f}")


async def client_loop(client, deadline, max_tokens, latencies, statuses, tokens, offset):
    turn = offset
    while time.monotonic() < deadline:
        body = {"model": "kotatsu", "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": QUESTIONS[turn % len(QUESTIONS)]}]}
        turn += 1
        started = time.perf_counter()
        try:
            response = await client.post("/v1/chat/completions", json=body)
        except httpx.HTTPError as error:
            statuses.append(type(error).__name__)
            continue
        latencies.append(time.perf_counter() - started)
        statuses.append(response.status_code)
        if response.status_code == 200:
            tokens.append(response.json()["usage"]["completion_tokens"])


async def run_clients(base_url, api_key, clients, seconds, max_tokens):
    latencies, statuses, tokens = [], [], []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=900,
                                 limits=limits) as client:
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(client_loop(client, deadline, max_tokens, latencies, statuses, tokens, index)
                               for index in range(clients)))
        # Requests in flight at the deadline are waited for and counted: the wall time covers them.
        elapsed = time.monotonic() - started
    return latencies, statuses, sum(tokens) / elapsed, elapsed


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def bench_concurrent_clients(base_url, api_key, args):
    _, _, alone_tok_s, _ = asyncio.run(run_clients(base_url, api_key, 1, args.seconds, args.max_tokens))
    latencies, statuses, tok_s, elapsed = asyncio.run(run_clients(base_url, api_key, args.clients, args.seconds, args.max_tokens))
    counts = {status: statuses.count(status) for status in sorted(set(statuses), key=str)}
    server_errors = sum(count for status, count in counts.items() if isinstance(status, int) and status >= 500)
    print(f"{args.clients} concurrent clients for {args.seconds:.0f} s (all done after {elapsed:.0f} s): "
          f"{len(statuses)} requests, statuses {counts}, 5xx: {server_errors}")
    print(f"  latency p50 {percentile(latencies, 0.5):.2f} s, p95 {percentile(latencies, 0.95):.2f} s; "
          f"aggregate {tok_s:.1f} completion tok/s; one client alone {alone_tok_s:.1f} tok/s; ratio {tok_s / alone_tok_s:.2f}")


if __name__ == "__main__":
    main()
