"""Assistant performance through the real web server (`manage.py web`, uvicorn) and its /v1 API, each number
next to a reference measured in the same run.

    .venv/bin/python bench/assistant.py [--clients 50] [--seconds 60] [--max-tokens 16]

1. Time to first token of a grounded question ("kotatsu": embedding, hybrid retrieval, prompt with sources,
   SmolLM2 on this node), streamed; goal <= 2 s. Reference: the same question to the raw LLM (no retrieval,
   short prompt), so the ratio is the price of grounding.
2. N concurrent API clients asking grounded questions for S seconds: every status (goal: no 5xx), p50/p95
   latency and aggregate completion tok/s. Reference: one client alone for the same time.

It runs on a fresh VAR_DIR with its own SQLite database and embedded Redis, seeded with the test suite's
small knowledge base of three indexed videos; models come from the shared model cache.
"""
import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="kotatsu-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")

QUESTIONS = [
    "Where is the fire extinguisher in the kitchen?",
    "How much did revenue grow compared with the second quarter?",
    "How do I set up the company VPN on my laptop?",
    "What should I do with knives after use?",
    "Which market will we focus on next quarter?",
]
TTFT_SAMPLES = 5


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()

    redis_process = start_redis()
    try:
        import django

        django.setup()
        base_url, api_key, web = serve_knowledge_base()
        try:
            print(f"# bench/assistant.py on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
            bench_time_to_first_token(base_url, api_key, args.max_tokens)
            bench_concurrent_clients(base_url, api_key, args)
        finally:
            web.terminate()
            web.wait(timeout=30)
    finally:
        redis_process.terminate()


def start_redis():
    from assistant.embedded_redis import start_embedded_redis
    from tests.embedded_services import free_port

    port = free_port()
    var_dir = Path(os.environ["VAR_DIR"])
    process = start_embedded_redis(port, var_dir / "redis", var_dir / "redis.log")
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    return process


def serve_knowledge_base():
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from assistant.services import do_create_api_key
    from tests.assistant.conftest import start_web_server
    from tests.assistant.knowledge import build_knowledge_base

    call_command("migrate", verbosity=0)
    build_knowledge_base()
    user = get_user_model().objects.create_user("bench", password="bench pass phrase 42")
    api_key = do_create_api_key(user, "bench")[1]
    web, base_url = start_web_server(Path(os.environ["VAR_DIR"]) / "web.log")
    return base_url, api_key, web


def streamed_ttft(client, model, question, max_tokens):
    """Seconds from sending the request to the first content delta of the streamed answer."""
    body = {"model": model, "messages": [{"role": "user", "content": question}], "max_tokens": max_tokens, "stream": True}
    started = time.perf_counter()
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"][0]["delta"]
                if delta.get("content"):
                    first = time.perf_counter() - started
                    break
        for _ in lines:
            pass
    return first


def bench_time_to_first_token(base_url, api_key, max_tokens):
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=600) as client:
        # Loads the models, and primes the retrieval indexes, outside the measurement.
        streamed_ttft(client, "kotatsu", QUESTIONS[0], 1)
        streamed_ttft(client, "smollm2-135m-instruct", QUESTIONS[0], 1)
        grounded = [streamed_ttft(client, "kotatsu", QUESTIONS[i % len(QUESTIONS)], max_tokens) for i in range(TTFT_SAMPLES)]
        raw = [streamed_ttft(client, "smollm2-135m-instruct", QUESTIONS[i % len(QUESTIONS)], max_tokens) for i in range(TTFT_SAMPLES)]
    grounded_s, raw_s = statistics.median(grounded), statistics.median(raw)
    verdict = "meets" if grounded_s <= 2.0 else "misses"
    print(f"TTFT grounded (kotatsu, median of {TTFT_SAMPLES}): {grounded_s:.2f} s ({verdict} the 2 s goal); "
          f"raw LLM {raw_s:.2f} s; ratio {grounded_s / raw_s:.2f}")


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
