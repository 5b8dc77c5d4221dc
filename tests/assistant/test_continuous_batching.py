"""A request that arrives while another answer is being generated joins it at the next step: it is answered
before that long answer ends, instead of waiting for it."""
import threading

import pytest

from inference.model_files import DEFAULT_MODEL as DEFAULT_LLM
from assistant.generation import local_model, sampling_params
from tests.assistant.conftest import ensure_model_catalog

pytestmark = pytest.mark.django_db
LONG_PROMPT = [{"role": "user", "content": "Count from one to one hundred in words, separated by commas."}]
LONG_TOKENS = 96
SHORT_PROMPT = [{"role": "user", "content": "Name a colour."}]
SHORT_TOKENS = 2


def test_a_request_arriving_mid_answer_finishes_before_the_long_answer_does():
    ensure_model_catalog()
    model = local_model(DEFAULT_LLM)
    long_answer = model.stream_chat(LONG_PROMPT, LONG_TOKENS, sampling_params())
    long_deltas = []
    long_started = threading.Event()

    def read_long_answer():
        for delta in long_answer:
            long_deltas.append(delta)
            long_started.set()

    reader = threading.Thread(target=read_long_answer)
    reader.start()
    assert long_started.wait(timeout=600)
    short_answer = model.stream_chat(SHORT_PROMPT, SHORT_TOKENS, sampling_params())
    short_text = "".join(short_answer)
    long_deltas_when_short_ended = len(long_deltas)
    reader.join(timeout=600)

    assert short_text and short_answer.completion_tokens == SHORT_TOKENS
    assert long_answer.finish_reason == "length" and long_answer.completion_tokens == LONG_TOKENS
    assert long_deltas_when_short_ended < LONG_TOKENS // 2
