"""Redis killed while a cluster answers through `manage.py web` (uvicorn): the /v1 chat.completions stream and the
dashboard's stream finish the answer (hidden states and tokens travel over the nodes' direct data links); a question
asked while Redis is away ends promptly with an error naming Redis, a 503 in OpenAI's shape or the dashboard's
"error" event, never a hang; once Redis is back, empty, and the nodes have announced themselves
again, the next answer works."""
import json
import time

import httpx
import pytest
from django.contrib.auth import get_user_model

from assistant.services import do_create_api_key
from inference.model_files import DEFAULT_MODEL
from inference.models import Plan
from inference.plumbing.embedded_redis import start_embedded_redis
from tests.assistant.conftest import ensure_model_catalog, start_web_server
from tests.assistant.knowledge import build_knowledge_base
from tests.assistant.login_helpers import CSRF_FIELD
from tests.conftest import stop_process
from tests.inference.cluster_lab import cluster_lab  # noqa: F401 (fixture)

PROMPTLY_S = 5
REJOIN_S = 30
ANSWER_S = 120  # a whole answer over the two-node cluster, first-request model loading included
PASSWORD = "a long pass phrase 42"


@pytest.fixture
def stack(cluster_lab, settings, tmp_path):
    """Two nodes and a web server on the lab's Redis (two live nodes: answers go through the cluster)."""
    cluster_lab.start_nodes("alpha", "beta")
    ensure_model_catalog()
    build_knowledge_base()
    employee = get_user_model().objects.create_user("noor", password=PASSWORD)
    raw_key = do_create_api_key(employee, "tests")[1]
    process, base_url = start_web_server(
        tmp_path / "web.log", REDIS_URL=cluster_lab.redis_url, CLUSTER_TOKEN=settings.CLUSTER_TOKEN, KOTATSU_THREADS=1
    )
    try:
        wait_for_warm_up(tmp_path / "web.log")
        yield {"lab": cluster_lab, "base_url": base_url, "api_key": raw_key, "web": process}
    finally:
        stop_process(process)


def wait_for_warm_up(log_path):
    """Its warm-up generates through the cluster too; the answers under test are then the only ones running."""
    deadline = time.monotonic() + ANSWER_S
    while "warmed up" not in log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the web server did not warm up"
        time.sleep(0.5)


def kill_redis(lab):
    lab.redis_process.kill()
    lab.redis_process.wait()
    return time.monotonic()


def start_redis_empty(lab, run):
    port = int(lab.redis_url.rsplit(":", 1)[1].split("/")[0])
    lab.redis_process = start_embedded_redis(port, lab.work_dir / f"redis-again-{run}", lab.work_dir / "redis.log", host=lab.host)
    deadline = time.monotonic() + REJOIN_S
    while sorted(lab.live_names()) != ["alpha", "beta"]:
        assert time.monotonic() < deadline, "the nodes did not announce themselves again"
        time.sleep(0.5)


def sse_blocks(response):
    """Each server-sent event as {field: value}, read as it arrives."""
    fields = {}
    for line in response.iter_lines():
        if not line:
            if fields:
                yield fields
            fields = {}
            continue
        name, _, value = line.partition(": ")
        fields[name] = value
    if fields:
        yield fields


def carries_text(data):
    chunk = json.loads(data)
    return any(choice["delta"].get("content") for choice in chunk.get("choices", []))


def api_stream(stack, max_tokens):
    return httpx.stream(
        "POST",
        f"{stack['base_url']}/v1/chat/completions",
        json={"model": DEFAULT_MODEL, "stream": True, "max_tokens": max_tokens,
              "messages": [{"role": "user", "content": "Tell me a long story about a cat."}]},
        headers={"Authorization": f"Bearer {stack['api_key']}"},
        timeout=httpx.Timeout(ANSWER_S, read=ANSWER_S),
    )


def logged_in_browser(base_url):
    browser = httpx.Client(base_url=base_url, timeout=httpx.Timeout(ANSWER_S, read=ANSWER_S))
    token = CSRF_FIELD.search(browser.get("/login/").text).group(1)
    browser.post("/login/", data={"username": "noor", "password": PASSWORD, "csrfmiddlewaretoken": token})
    return browser


def ask_stream(browser):
    return browser.stream(
        "POST", "/ask/stream", data={"question": "Where is the fire extinguisher in the kitchen?"},
        headers={"X-CSRFToken": browser.cookies["csrftoken"]},
    )


def streamed_payloads(stack, max_tokens, kill_at_first_text=False):
    """The /v1 stream's data payloads, and when Redis was killed (at its first text) or None."""
    killed_at = None
    with api_stream(stack, max_tokens) as response:
        assert response.status_code == 200
        payloads = []
        for event in sse_blocks(response):
            payloads.append(event["data"])
            if kill_at_first_text and killed_at is None and carries_text(event["data"]):
                killed_at = kill_redis(stack["lab"])
    return payloads, killed_at


def dashboard_events(browser, stack, kill_at_first_delta=False):
    killed_at = None
    with ask_stream(browser) as response:
        assert response.status_code == 200
        events = []
        for event in sse_blocks(response):
            events.append(event)
            if kill_at_first_delta and killed_at is None and event["event"] == "delta":
                killed_at = kill_redis(stack["lab"])
    return events, killed_at


def test_redis_killed_mid_answer_the_streams_finish_and_a_question_while_it_is_away_is_a_clear_error(stack):
    lab = stack["lab"]

    payloads, killed_at = streamed_payloads(stack, 40, kill_at_first_text=True)
    assert killed_at is not None, payloads
    assert payloads[-1] == "[DONE]" and json.loads(payloads[-2])["choices"][0]["finish_reason"] == "length", payloads

    asked_at = time.monotonic()
    with api_stream(stack, 8) as response:
        response.read()
    assert time.monotonic() - asked_at < PROMPTLY_S
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "server_error" and "Redis" in error["message"], error

    start_redis_empty(lab, 1)
    payloads, _ = streamed_payloads(stack, 8)
    assert payloads[-1] == "[DONE]" and json.loads(payloads[-2])["choices"][0]["finish_reason"] == "length", payloads

    browser = logged_in_browser(stack["base_url"])
    events, killed_at = dashboard_events(browser, stack, kill_at_first_delta=True)
    assert killed_at is not None, events
    assert events[-1]["event"] == "done", events[-1]

    asked_at = time.monotonic()
    events, _ = dashboard_events(browser, stack)
    assert time.monotonic() - asked_at < PROMPTLY_S
    assert events[-1]["event"] == "error" and "Redis" in json.loads(events[-1]["data"])["message"], events[-1]

    start_redis_empty(lab, 2)
    events, _ = dashboard_events(browser, stack)
    assert events[-1]["event"] == "done", events[-1]
    assert Plan.objects.filter(model_name=DEFAULT_MODEL).exists()  # the answers went through the cluster
    assert stack["web"].poll() is None and all(process.poll() is None for process in lab.nodes.values())
