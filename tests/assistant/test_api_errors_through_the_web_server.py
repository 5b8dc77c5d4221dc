"""Through `manage.py web` (uvicorn), where the body limit could be met elsewhere than in Django's test client:
a 10 MB body is a 413 in OpenAI's JSON, and the openai package raises its own exceptions for a request
without a model and for a model of the wrong kind."""
import httpx
import openai
import pytest
from django.contrib.auth import get_user_model

from assistant.services import do_create_api_key
from tests.assistant.conftest import ensure_model_catalog, start_web_server
from tests.conftest import stop_process

# The key is committed once for the module (server) for the web server to see.
pytestmark = pytest.mark.django_db
TEN_MEGABYTES = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.core.management import call_command

    with django_db_blocker.unblock():
        ensure_model_catalog()
        employee = get_user_model().objects.create_user("liam", password="a long pass phrase 42")
        raw_key = do_create_api_key(employee, "tests")[1]
    process, base_url = start_web_server(tmp_path_factory.mktemp("web") / "web.log")
    try:
        yield {"base_url": base_url, "api_key": raw_key}
    finally:
        stop_process(process)
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


def test_a_ten_megabyte_body_is_a_413_in_openai_shape(server):
    body = '{"model": "kotatsu", "messages": [{"role": "user", "content": "' + "x" * TEN_MEGABYTES + '"}]}'
    response = httpx.post(f"{server['base_url']}/v1/chat/completions", content=body, timeout=60, headers={
        "Authorization": f"Bearer {server['api_key']}", "Content-Type": "application/json"})
    assert response.status_code == 413, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def openai_client(server):
    return openai.OpenAI(base_url=f"{server['base_url']}/v1", api_key=server["api_key"], max_retries=0, timeout=60)


def test_a_request_without_a_model_is_a_bad_request(server):
    with pytest.raises(openai.BadRequestError) as raised:
        openai_client(server).chat.completions.create(model="", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.param == "model"


def test_the_embedding_model_sent_to_chat_is_a_bad_request_naming_its_kind(server):
    with pytest.raises(openai.BadRequestError) as raised:
        openai_client(server).chat.completions.create(model="all-minilm-l6-v2", messages=[{"role": "user", "content": "hi"}])
    assert "all-minilm-l6-v2 is an embedding model" in raised.value.message
