"""The official openai package, unchanged, against a live server's /v1: models, chat with and without
streaming, embeddings, and its own exceptions for a bad key and a prompt over the context window."""
import numpy as np
import openai
import pytest

from ingest.embedding import embed_texts
from tests.assistant.knowledge import KITCHEN_SAFETY, segment_start

# The knowledge base and key are committed once for the module (served_knowledge) for the server to see.
pytestmark = pytest.mark.django_db


def client(served, api_key=None):
    return openai.OpenAI(base_url=f"{served['base_url']}/v1", api_key=api_key or served["api_key"], max_retries=0, timeout=300)


def test_models_lists_kotatsu_the_llm_and_the_embedding_model(served_knowledge):
    names = {model.id for model in client(served_knowledge).models.list()}
    assert {"kotatsu", "smollm2-135m-instruct", "all-minilm-l6-v2"} <= names
    assert not any(name.startswith("whisper") for name in names)


def test_kotatsu_answers_from_the_knowledge_base_with_its_sources(served_knowledge):
    completion = client(served_knowledge).chat.completions.create(
        model="kotatsu", messages=[{"role": "user", "content": "Where is the fire extinguisher in the kitchen?"}], max_tokens=16
    )
    assert completion.choices[0].message.content.strip()
    assert completion.usage.completion_tokens > 0 and completion.usage.prompt_tokens > 0
    first = completion.model_extra["sources"][0]
    assert first["video_id"] == served_knowledge["kitchen"].pk
    assert first["start_s"] == segment_start(KITCHEN_SAFETY, "fire extinguisher")


def test_a_streamed_answer_arrives_in_chunks_and_the_last_carries_the_sources(served_knowledge):
    stream = client(served_knowledge).chat.completions.create(
        model="kotatsu", messages=[{"role": "user", "content": "How much did revenue grow this quarter?"}],
        max_tokens=12, stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    # Content comes a checked sentence at a time (the unfinished one cut by max_tokens is sent when it is all).
    assert text.strip() and [chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    finished = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert finished[-1].model_extra["sources"][0]["video_id"] == served_knowledge["sales"].pk
    assert chunks[-1].usage.completion_tokens > 0


def test_a_raw_llm_name_is_plain_chat_without_sources(served_knowledge):
    completion = client(served_knowledge).chat.completions.create(
        model="smollm2-135m-instruct", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
    )
    assert completion.choices[0].message.content.strip()
    assert completion.choices[0].finish_reason in {"stop", "length"}
    assert "sources" not in (completion.model_extra or {})


def test_embeddings_come_back_in_input_order_with_usage(served_knowledge):
    texts = ["fire extinguisher", "quarterly revenue", "WireGuard VPN client"]
    response = client(served_knowledge).embeddings.create(model="all-minilm-l6-v2", input=texts)
    assert [item.index for item in response.data] == [0, 1, 2]
    returned = np.array([item.embedding for item in response.data], dtype=np.float32)
    np.testing.assert_allclose(returned, embed_texts(texts), atol=1e-5)
    assert response.usage.prompt_tokens == response.usage.total_tokens > len(texts)


def test_a_bad_key_raises_authentication_error(served_knowledge):
    with pytest.raises(openai.AuthenticationError) as raised:
        client(served_knowledge, api_key="kot_not-a-key").models.list()
    assert raised.value.status_code == 401 and raised.value.code == "invalid_api_key"


def test_a_prompt_over_the_context_window_is_a_bad_request(served_knowledge):
    with pytest.raises(openai.BadRequestError) as raised:
        client(served_knowledge).chat.completions.create(
            model="smollm2-135m-instruct", messages=[{"role": "user", "content": "hello " * 6000}], max_tokens=4
        )
    assert raised.value.code == "context_length_exceeded"
