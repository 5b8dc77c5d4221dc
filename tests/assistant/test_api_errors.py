"""/v1 errors in OpenAI's shape: 401 for a missing, unknown or revoked key, 404 for an unknown model,
400 for malformed requests; a browser session is no substitute for a key."""
import pytest
from django.contrib.auth import get_user_model

from assistant.models import ApiKey
from assistant.services import do_create_api_key
from tests.assistant.conftest import ensure_model_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_key():
    ensure_model_catalog()
    employee = get_user_model().objects.create_user("frank", password="a long pass phrase 42")
    return do_create_api_key(employee, "tests")[1]


def bearer(raw_key):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


def assert_openai_error(response, status, code=None):
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if code:
        assert error["code"] == code
    return error


def test_a_missing_key_is_a_401_in_openai_shape(client):
    assert_openai_error(client.get("/v1/models"), 401, "invalid_api_key")


def test_an_unknown_key_is_a_401(client, api_key):
    assert_openai_error(client.get("/v1/models", **bearer(api_key + "x")), 401, "invalid_api_key")


def test_a_revoked_key_is_refused_from_the_next_request_on(client, api_key):
    assert client.get("/v1/models", **bearer(api_key)).status_code == 200
    ApiKey.objects.get().revoke()
    assert_openai_error(client.get("/v1/models", **bearer(api_key)), 401, "invalid_api_key")


def test_a_logged_in_browser_session_does_not_open_the_api(client, api_key):
    client.force_login(get_user_model().objects.get(username="frank"))
    assert_openai_error(client.get("/v1/models"), 401)


def test_an_unknown_model_is_a_404(client, api_key):
    response = client.post("/v1/chat/completions", {"model": "gpt-7", "messages": [{"role": "user", "content": "hi"}]},
                           content_type="application/json", **bearer(api_key))
    assert assert_openai_error(response, 404, "model_not_found")["param"] == "model"


def test_malformed_json_is_a_400(client, api_key):
    response = client.post("/v1/chat/completions", "{not json", content_type="application/json", **bearer(api_key))
    assert_openai_error(response, 400)


def test_a_conversation_must_end_with_the_users_message(client, api_key):
    body = {"model": "kotatsu", "messages": [{"role": "assistant", "content": "hello"}]}
    response = client.post("/v1/chat/completions", body, content_type="application/json", **bearer(api_key))
    assert assert_openai_error(response, 400)["param"] == "messages"


def test_empty_texts_cannot_be_embedded(client, api_key):
    response = client.post("/v1/embeddings", {"model": "all-minilm-l6-v2", "input": ["ok", " "]},
                           content_type="application/json", **bearer(api_key))
    assert assert_openai_error(response, 400)["param"] == "input"


def test_the_wrong_method_is_refused_in_the_same_shape(client, api_key):
    assert_openai_error(client.get("/v1/chat/completions", **bearer(api_key)), 405)
