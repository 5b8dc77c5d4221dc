"""The decode speed "auto" chooses an LLM by (inference.selectors.estimated_decode_tok_s) against the engine's measured
decode, for every catalog LLM in the model cache, in one run; and the speed model's constants fitted from the runs.

    .venv/bin/python bench/model_choice.py [--runs 3] [--decode-tokens 48] [--model NAME ...]

Each model runs in this process on the whole machine (KOTATSU_THREADS as set), as the local engine answers; rates are
the best of --runs. Prints, per model: weight bytes read per decode step, layers, measured decode tok/s, the estimate
for one node, and estimate / measured; then the weight rate and per-layer cost fitted by least squares to this run, to
compare with DECODE_SECONDS_PER_BYTE and DECODE_SECONDS_PER_LAYER in inference/selectors.py. Run it alone.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")

DEFAULT_MODELS = ("smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct")
PROMPT = "Write a long story about a fox who learns to sail:"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="catalog LLM (default: both built-in LLMs)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--decode-tokens", type=int, default=48)
    args = parser.parse_args()

    import django

    django.setup()
    from inference.cluster.planner import Stage
    from inference.core.engine import Engine
    from inference.core.sampling import SamplingParams
    from inference.catalog import llm_profile
    from inference.model_files import cached_model_path
    from inference.selectors import estimated_decode_tok_s

    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'model':30} {'MB/step':>8} {'layers':>6} {'measured':>9} {'estimate':>9} {'ratio':>6}")
    rows = []
    for name in args.model or DEFAULT_MODELS:
        path = cached_model_path(name)
        if path is None:
            sys.exit(f"{name} is not in the model cache: run manage.py models pull {name}")
        engine = Engine(path, context_length=1024)
        profile = llm_profile(engine.model)
        n_layers = len(profile["layer_bytes"])
        step_bytes = sum(layer - profile["kv_bytes_per_layer"] for layer in profile["layer_bytes"]) + profile["head_bytes"]
        prompt = engine.tokenizer.encode(PROMPT)
        measured = 0.0
        for _ in range(args.runs):
            generation = engine.generate(prompt, max_tokens=args.decode_tokens, params=SamplingParams())
            for _delta in generation:
                pass
            measured = max(measured, generation.stats.decode_tok_s)
        estimate = estimated_decode_tok_s(profile, [Stage("here", 0, n_layers)], {"here": 1.0})
        rows.append((step_bytes, n_layers, 1.0 / measured))
        print(f"{name:30} {step_bytes / 1e6:8.1f} {n_layers:6d} {measured:9.2f} {estimate:9.2f} {estimate / measured:6.2f}")
        del engine
        time.sleep(0.5)
    if len(rows) >= 2:
        design = np.array([[step_bytes, n_layers] for step_bytes, n_layers, _ in rows], dtype=np.float64)
        seconds = np.array([reference_seconds for *_, reference_seconds in rows])
        (per_byte, per_layer), *_ = np.linalg.lstsq(design, seconds, rcond=None)
        print(f"fitted: {1 / per_byte / 1e9:.2f} GB/s of weights, {per_layer * 1e3:.3f} ms per layer")


if __name__ == "__main__":
    main()
