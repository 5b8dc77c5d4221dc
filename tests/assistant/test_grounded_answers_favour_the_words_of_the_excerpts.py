"""Grounded answers add COPY_BIAS to the logits of the excerpts' tokens (OpenAI's logit_bias), so a small model
copies the excerpts' names and numbers rather than inventing its own."""
import numpy as np

from assistant.answering import COPY_BIAS, grounded_sampling_params
from inference.core.sampling import SamplingParams, apply_penalties, sample_token


def test_the_excerpts_tokens_get_the_bias_once_each():
    params = grounded_sampling_params(copied_ids=[7, 5, 7])
    assert COPY_BIAS > 0 and params.logit_bias == ((5, COPY_BIAS), (7, COPY_BIAS))


def test_a_logit_bias_is_added_to_its_tokens_and_can_change_the_greedy_choice():
    logits = np.array([2.0, 1.0, 0.0], dtype=np.float32)
    params = SamplingParams(logit_bias=((1, 1.5), (2, -1.0)))
    biased = apply_penalties(logits, params, [], np.zeros(3, np.float32))
    assert biased.tolist() == [2.0, 2.5, -1.0] and logits.tolist() == [2.0, 1.0, 0.0]
    assert sample_token(biased, params, np.random.default_rng(0)) == 1
