"""Our SmolLM2 logits and greedy tokens against transformers + torch loading the same GGUF, with the compiled
kernels and with their pure numpy reference (KOTATSU_KERNELS=numpy)."""

import numpy as np
import pytest
import torch

from inference.core.forward import forward
from inference.core.kv_cache import Segment
from inference.core.sampling import SamplingParams

DECODE_STEPS = 32
GREEDY_TOKENS = 64


def reference_logits(reference_model, token_ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return reference_model(torch.tensor([token_ids])).logits[0].numpy()  # [T, V]


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_prompt_and_decode_logits_agree_within_tolerance(engine, reference_model, monkeypatch, kernels):
    monkeypatch.setenv("KOTATSU_KERNELS", kernels)
    prompt_ids = engine.tokenizer.encode_chat([{"role": "user", "content": "Name three rivers in Europe and say where each one flows."}])
    cache = engine.new_cache()
    # Two prefill blocks, so the second one attends to cached keys of the first.
    split = len(prompt_ids) // 2
    ours = [
        forward(np.array(prompt_ids[:split]), engine.weights, [Segment(cache, split)], all_logits=True),
        forward(np.array(prompt_ids[split:]), engine.weights, [Segment(cache, len(prompt_ids) - split)], all_logits=True),
    ]
    token_ids = list(prompt_ids)
    for _ in range(DECODE_STEPS):
        token_ids.append(int(np.argmax(ours[-1][-1])))
        ours.append(forward(np.array(token_ids[-1:]), engine.weights, [Segment(cache, 1)]))

    ours = np.concatenate(ours)  # [T + steps, V]
    reference = reference_logits(reference_model, token_ids)  # [T + steps, V]
    tolerance = 1e-3 * (reference.max() - reference.min())
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= tolerance


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_greedy_continuation_of_64_tokens_is_identical(engine, reference_model, monkeypatch, kernels):
    monkeypatch.setenv("KOTATSU_KERNELS", kernels)
    prompt_ids = engine.tokenizer.encode("Once upon a time, in a village at the edge of a great forest,")
    generation = engine.generate(prompt_ids, GREEDY_TOKENS, SamplingParams(temperature=0.0))
    for _ in generation:
        pass
    ours = generation.results[0].token_ids

    with torch.no_grad():
        output = reference_model.generate(
            torch.tensor([prompt_ids]),
            attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
            max_new_tokens=GREEDY_TOKENS,
            do_sample=False,
        )
    reference = output[0, len(prompt_ids) :].tolist()
    if generation.results[0].finish_reason == "stop":  # we drop the stop token transformers keeps
        assert reference[len(ours)] in engine.tokenizer.stop_token_ids
        reference = reference[: len(ours)]
    assert ours == reference
    assert len(ours) == GREEDY_TOKENS or generation.results[0].finish_reason == "stop"
