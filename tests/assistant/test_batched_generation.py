"""Concurrent requests on this node are generated together in one batch; each still gets its own answer,
cut at its own max_tokens."""
import threading

import pytest

from inference.model_files import DEFAULT_MODEL as DEFAULT_LLM
from assistant.generation import local_model, sampling_params
from tests.assistant.conftest import ensure_model_catalog

pytestmark = pytest.mark.django_db
PROMPTS = ["Name a colour.", "Say hello to the team.", "What is two plus two?"]
MAX_TOKENS = [3, 10, 6]


def chat(prompt, max_tokens):
    stream = local_model(DEFAULT_LLM).stream_chat([{"role": "user", "content": prompt}], max_tokens, sampling_params())
    text = "".join(stream)
    return text, stream.completion_tokens, stream.finish_reason


def test_concurrent_requests_get_the_answers_they_would_get_alone():
    ensure_model_catalog()
    alone = [chat(prompt, max_tokens) for prompt, max_tokens in zip(PROMPTS, MAX_TOKENS)]
    together = [None] * len(PROMPTS)
    start = threading.Barrier(len(PROMPTS))

    def ask(index):
        start.wait()
        together[index] = chat(PROMPTS[index], MAX_TOKENS[index])

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(len(PROMPTS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert together == alone
    for (text, tokens, reason), max_tokens in zip(together, MAX_TOKENS):
        assert text and (tokens == max_tokens and reason == "length" or tokens < max_tokens and reason == "stop")
