"""Sampling: greedy, the filters' distributions, penalties, and seeded reproducibility."""

import numpy as np
import pytest

from inference.core.sampling import Sampler, SamplingParams, apply_penalties, sample_token, token_probabilities

LOGITS = np.log(np.array([0.5, 0.25, 0.15, 0.07, 0.03], dtype=np.float32))  # [V] softmax = these probabilities


def draw(params: SamplingParams, n: int = 20000) -> np.ndarray:
    rng = np.random.default_rng(params.seed)
    counts = np.bincount([sample_token(LOGITS, params, rng) for _ in range(n)], minlength=len(LOGITS))
    return counts / n


def test_zero_temperature_is_greedy():
    assert sample_token(np.array([0.1, 3.0, -1.0, 2.9], dtype=np.float32), SamplingParams(), np.random.default_rng()) == 1


def test_temperature_one_samples_the_softmax_distribution():
    np.testing.assert_allclose(draw(SamplingParams(temperature=1.0, seed=1)), [0.5, 0.25, 0.15, 0.07, 0.03], atol=0.015)


def test_low_temperature_sharpens_the_distribution():
    probs = token_probabilities(LOGITS, SamplingParams(temperature=0.5))
    expected = np.array([0.5, 0.25, 0.15, 0.07, 0.03]) ** 2
    np.testing.assert_allclose(probs, expected / expected.sum(), rtol=1e-5)


def test_top_k_keeps_only_the_k_most_likely_tokens():
    probs = token_probabilities(LOGITS, SamplingParams(temperature=1.0, top_k=2))
    np.testing.assert_allclose(probs, [2 / 3, 1 / 3, 0, 0, 0], rtol=1e-5)


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = token_probabilities(LOGITS, SamplingParams(temperature=1.0, top_p=0.8))  # 0.5 + 0.25 < 0.8 <= 0.9
    np.testing.assert_allclose(probs, np.array([0.5, 0.25, 0.15, 0, 0]) / 0.9, rtol=1e-5)
    sampled = draw(SamplingParams(temperature=1.0, top_p=0.8, seed=2))
    assert sampled[3] == 0 and sampled[4] == 0
    np.testing.assert_allclose(sampled[:3], np.array([0.5, 0.25, 0.15]) / 0.9, atol=0.015)


def test_min_p_drops_tokens_below_a_fraction_of_the_best():
    probs = token_probabilities(LOGITS, SamplingParams(temperature=1.0, min_p=0.25))  # cut below 0.125
    np.testing.assert_allclose(probs, np.array([0.5, 0.25, 0.15, 0, 0]) / 0.9, rtol=1e-5)


def test_same_seed_gives_same_tokens_and_another_seed_differs():
    params = SamplingParams(temperature=1.0, seed=42)
    sampler_a, sampler_b = Sampler(params, 5, []), Sampler(params, 5, [])
    tokens_a = [sampler_a.next_token(LOGITS) for _ in range(50)]
    tokens_b = [sampler_b.next_token(LOGITS) for _ in range(50)]
    other = Sampler(SamplingParams(temperature=1.0, seed=43), 5, [])
    assert tokens_a == tokens_b
    assert [other.next_token(LOGITS) for _ in range(50)] != tokens_a


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_tokens():
    logits = np.array([2.0, -2.0, 1.0], dtype=np.float32)
    penalized = apply_penalties(logits, SamplingParams(repetition_penalty=2.0), np.array([0, 1]), np.zeros(3, np.float32))
    np.testing.assert_allclose(penalized, [1.0, -4.0, 1.0])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (SamplingParams(frequency_penalty=0.5), [2.0 - 1.5, -2.0, 1.0 - 0.5]),
        (SamplingParams(presence_penalty=0.5), [2.0 - 0.5, -2.0, 1.0 - 0.5]),
    ],
)
def test_frequency_penalty_scales_with_count_and_presence_penalty_does_not(params, expected):
    generated_counts = np.array([3, 0, 1], dtype=np.float32)
    penalized = apply_penalties(np.array([2.0, -2.0, 1.0], dtype=np.float32), params, np.array([0, 2]), generated_counts)
    assert penalized.dtype == np.float32
    np.testing.assert_allclose(penalized, expected)


def test_a_penalized_token_stops_being_the_greedy_choice():
    sampler = Sampler(SamplingParams(presence_penalty=1.0), 3, prompt_ids=[])
    logits = np.array([1.0, 0.5, 0.2], dtype=np.float32)
    assert [sampler.next_token(logits) for _ in range(3)] == [0, 1, 2]
