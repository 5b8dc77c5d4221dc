"""Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Q4_K and Q6_K blocks) through the compiled kernels against transformers
on the same GGUF: logits within 1e-3 of their range and a 64-token greedy continuation transformers agrees with.

One reference forward pass over the prompt and our 64 tokens checks both: greedy decoding is identical exactly
when, at every step, the reference's argmax given the same prefix is the token we chose.
"""
import os

import numpy as np
import pytest
import torch

from inference.core.forward import forward
from inference.core.kv_cache import Segment
from inference.core.sampling import SamplingParams

MODEL = "qwen2.5-coder-1.5b-instruct"
GREEDY_TOKENS = 64


@pytest.fixture
def qwen_gguf(db):
    from inference.model_files import resolve_model_path

    return resolve_model_path(MODEL)  # through the model cache: fetched once per machine


def test_logits_and_64_greedy_tokens_agree_with_transformers(qwen_gguf):
    import transformers
    from transformers import AutoModelForCausalLM

    from inference.core.engine import Engine

    engine = Engine(qwen_gguf, context_length=512)
    prompt_ids = engine.tokenizer.encode_chat([{"role": "user", "content": "Write a Python function that reverses a string, with a docstring."}])
    generation = engine.generate(prompt_ids, GREEDY_TOKENS, SamplingParams(temperature=0.0))
    for _ in generation:
        pass
    ours = generation.results[0].token_ids
    assert len(ours) == GREEDY_TOKENS or generation.results[0].finish_reason == "stop"
    cache = engine.new_cache()
    token_ids = prompt_ids + ours
    our_logits = forward(np.array(token_ids), engine.weights, [Segment(cache, len(token_ids))], all_logits=True)  # [T, V]
    del engine

    transformers.logging.set_verbosity_error()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    reference_model = AutoModelForCausalLM.from_pretrained(str(qwen_gguf.parent), gguf_file=qwen_gguf.name, dtype=torch.float32)
    with torch.no_grad():
        reference = reference_model(torch.tensor([token_ids])).logits[0].numpy()  # [T, V]

    assert np.abs(our_logits - reference).max() <= 1e-3 * (reference.max() - reference.min())
    reference_choices = reference[len(prompt_ids) - 1 : -1].argmax(axis=-1).tolist()  # the token after each prefix
    assert reference_choices == ours
