"""The streaming generator: deltas as tokens come, stats, stops, seeds and batched decoding."""

import numpy as np
import pytest

from inference.core.sampling import SamplingParams

PROMPT = "The three primary colors are"


def run(generation):
    deltas = list(generation)
    return deltas, generation.results


def test_streamed_deltas_are_the_tokens_and_text_of_the_result(engine):
    generation = engine.generate(engine.tokenizer.encode(PROMPT), 12, SamplingParams())
    deltas, (result,) = run(generation)
    assert [d.token_id for d in deltas if d.token_id is not None] == result.token_ids
    assert "".join(d.text for d in deltas) == result.text == engine.tokenizer.decode(result.token_ids)
    assert len(result.token_ids) == 12 and result.finish_reason == "length"


def test_stats_report_prompt_tokens_ttft_and_throughput(engine):
    prompt_ids = engine.tokenizer.encode(PROMPT)
    generation = engine.generate(prompt_ids, 8, SamplingParams())
    run(generation)
    stats = generation.stats
    assert stats.prompt_tokens == len(prompt_ids) and stats.generated_tokens == 8
    assert stats.ttft_s > 0 and stats.prefill_tok_s > 0 and stats.decode_tok_s > 0


def test_chat_generation_stops_at_the_end_of_turn_token(engine):
    prompt_ids = engine.tokenizer.encode_chat([{"role": "user", "content": "Say just: hello"}])
    _, (result,) = run(engine.generate(prompt_ids, 64, SamplingParams()))
    assert result.finish_reason == "stop"
    assert not set(result.token_ids) & engine.tokenizer.stop_token_ids


def test_same_seed_gives_the_same_sampled_tokens_and_another_seed_does_not(engine):
    prompt_ids = engine.tokenizer.encode(PROMPT)

    def sample(seed):
        _, (result,) = run(engine.generate(prompt_ids, 16, SamplingParams(temperature=1.0, top_p=0.95, seed=seed)))
        return result.token_ids

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_batched_decoding_gives_each_sequence_its_own_greedy_tokens(engine):
    prompts = [engine.tokenizer.encode(text) for text in (PROMPT, "def fibonacci(n):", "Paris is the capital of")]
    _, batched = run(engine.generate_batch(prompts, 10, SamplingParams()))
    for prompt, result in zip(prompts, batched):
        _, (alone,) = run(engine.generate(prompt, 10, SamplingParams()))
        assert result.token_ids == alone.token_ids


def test_a_prompt_that_fills_the_context_is_refused(engine):
    with pytest.raises(ValueError, match="no room"):
        engine.generate([1] * engine.context_length, 4, SamplingParams())


def test_generation_stops_when_the_context_is_full(smollm2_gguf):
    from inference.core.engine import Engine

    small = Engine(smollm2_gguf, context_length=24)
    _, (result,) = run(small.generate(list(np.arange(100, 120)), 50, SamplingParams()))
    assert result.finish_reason == "length" and len(result.token_ids) == 24 - 20 + 1
