"""Every /v1 error is OpenAI's JSON with the status OpenAI would give, as the reviewer found them: a 10 MB body
is a 413 (not Django's HTML page), a request without "model" a 400 (not "The model None does not exist"), a
model of the wrong kind a 400 naming what it is; an unknown model stays a 404."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from assistant.services import do_create_api_key
from tests.assistant.conftest import ensure_model_catalog

pytestmark = pytest.mark.django_db
TEN_MEGABYTES = 10 * 1024 * 1024
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def api_key():
    ensure_model_catalog()
    employee = get_user_model().objects.create_user("kate", password="a long pass phrase 42")
    return do_create_api_key(employee, "tests")[1]


def post(client, path, body, api_key):
    return client.post(path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key}")


def openai_error(response, status):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def test_a_ten_megabyte_body_is_a_413_in_openai_shape(client, api_key):
    body = '{"model": "kotatsu", "messages": [{"role": "user", "content": "' + "x" * TEN_MEGABYTES + '"}]}'
    error = openai_error(post(client, "/v1/chat/completions", body, api_key), 413)
    assert error["code"] == "request_too_large"


@pytest.mark.parametrize("path, body", [
    ("/v1/chat/completions", {"messages": HELLO}),
    ("/v1/chat/completions", {"model": None, "messages": HELLO}),
    ("/v1/embeddings", {"input": "hello"}),
])
def test_a_request_without_a_model_is_a_400_naming_the_parameter(client, api_key, path, body):
    error = openai_error(post(client, path, body, api_key), 400)
    assert error["param"] == "model" and "None" not in error["message"]


def test_the_embedding_model_sent_to_chat_is_a_400_saying_it_is_an_embedding_model(client, api_key):
    error = openai_error(post(client, "/v1/chat/completions", {"model": "all-minilm-l6-v2", "messages": HELLO}, api_key), 400)
    assert error["message"].startswith("all-minilm-l6-v2 is an embedding model;")
    assert "'kotatsu'" in error["message"] and "smollm2-135m-instruct" in error["message"]
    assert error["param"] == "model"


def test_an_llm_sent_to_embeddings_is_a_400_saying_it_is_an_llm(client, api_key):
    error = openai_error(post(client, "/v1/embeddings", {"model": "smollm2-135m-instruct", "input": "hi"}, api_key), 400)
    assert error["message"].startswith("smollm2-135m-instruct is an LLM;") and "'all-minilm-l6-v2'" in error["message"]


def test_an_unknown_model_stays_a_404(client, api_key):
    for path, body in [("/v1/chat/completions", {"model": "gpt-7", "messages": HELLO}),
                       ("/v1/embeddings", {"model": "gpt-7", "input": "hi"})]:
        assert openai_error(post(client, path, body, api_key), 404)["code"] == "model_not_found"


def test_an_unknown_endpoint_is_a_404_in_openai_shape_even_without_a_csrf_token(api_key):
    client = Client(enforce_csrf_checks=True)
    openai_error(post(client, "/v1/completions", {"model": "kotatsu", "prompt": "hi"}, api_key), 404)
    openai_error(client.get("/v1/models/kotatsu/extra"), 404)
