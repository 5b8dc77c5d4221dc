"""A model that starts generating again what it already generated is looping: with stop_repeated_ngram the
token loop ends the sequence there, as a stop token would, instead of repeating until the token limit."""
import pytest

from assistant.answering import grounded_sampling_params
from assistant.generation import local_model
from inference.core.sampling import SamplingParams, repeats_ngram
from inference.model_files import DEFAULT_MODEL as DEFAULT_LLM
from tests.assistant.conftest import ensure_model_catalog

pytestmark = pytest.mark.django_db
# SmolLM2 answers this, greedily, with "Sunday" over and over until the token limit.
LOOPING = [{"role": "user", "content": "List the days of the week, then list them again."}]
MAX_TOKENS = 80


def test_a_run_of_tokens_counts_as_repeated_only_when_it_was_generated_before_in_that_order():
    assert repeats_ngram([1, 2, 3, 9, 1, 2, 3], 3)
    assert not repeats_ngram([1, 2, 3, 9, 1, 2, 4], 3)
    assert not repeats_ngram([3, 2, 1, 9, 1, 2, 3], 3)
    assert not repeats_ngram([1, 2, 3], 3), "a run seen once is not a repeat"
    assert not repeats_ngram([5, 5, 5, 5], 0), "0 turns the stop off"


def test_a_looping_answer_stops_at_the_repeat_with_the_text_it_had_so_far():
    ensure_model_catalog()
    model = local_model(DEFAULT_LLM)
    looping = model.stream_chat(LOOPING, MAX_TOKENS, SamplingParams())
    looped = "".join(looping)
    assert looping.finish_reason == "length", "the test needs a prompt the model loops on"

    stopped = model.stream_chat(LOOPING, MAX_TOKENS, SamplingParams(stop_repeated_ngram=8))
    text = "".join(stopped)
    assert stopped.finish_reason == "stop" and stopped.completion_tokens < looping.completion_tokens
    assert text and looped.startswith(text) and len(text) < len(looped), "the same greedy tokens, up to the repeat"


def test_grounded_answers_stop_on_repeats_by_default():
    assert grounded_sampling_params().stop_repeated_ngram > 0
