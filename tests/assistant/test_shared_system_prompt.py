"""The system prompt that every grounded question begins with is read once: later prompts that start with it
reuse its keys and values on this node, and get the answer they would get by reading it themselves."""
import pytest

from assistant.answering import SYSTEM_PROMPT
from inference.model_files import DEFAULT_MODEL as DEFAULT_LLM
from assistant.generation import local_model, sampling_params
from tests.assistant.conftest import ensure_model_catalog

pytestmark = pytest.mark.django_db
SOURCES = '[1] "Kitchen safety briefing" (0:36-1:12): The fire extinguisher is mounted next to the north exit door.'
QUESTIONS = ["Where is the fire extinguisher?", "Which door is the fire extinguisher next to?"]
MAX_TOKENS = 12


def messages(question):
    return [{"role": "system", "content": f"{SYSTEM_PROMPT}\n\n{SOURCES}"}, {"role": "user", "content": question}]


def answer(model, question, shared_system_prompt):
    stream = model.stream_chat(messages(question), MAX_TOKENS, sampling_params(), shared_system_prompt=shared_system_prompt)
    return "".join(stream)


def test_prompts_that_reuse_the_kept_system_prompt_get_the_answers_of_reading_it():
    ensure_model_catalog()
    model = local_model(DEFAULT_LLM)
    engine = model.engine.engine
    engine.shared_prefixes.clear()  # what earlier tests of this process kept
    read = [answer(model, question, shared_system_prompt=None) for question in QUESTIONS]
    assert not engine.shared_prefixes

    first = answer(model, QUESTIONS[0], shared_system_prompt=SYSTEM_PROMPT)
    [(head_ids, kept)] = engine.shared_prefixes.items()
    second = answer(model, QUESTIONS[1], shared_system_prompt=SYSTEM_PROMPT)

    system_only = engine.tokenizer.encode_chat([{"role": "system", "content": SYSTEM_PROMPT}])
    assert len(head_ids) > 40 and list(head_ids) == system_only[: len(head_ids)]
    assert engine.shared_prefixes[head_ids] is kept  # found, not read and kept again
    assert [first, second] == read
