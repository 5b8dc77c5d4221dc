"""GET /health tells anyone only whether the node is up ({"status": "ok" | "degraded" | "down"} and 200/503);
the Redis URL, the model cache's path and the workers' names are for a staff session or a staff user's API key."""
import pytest
from django.contrib.auth import get_user_model

from assistant.services import do_create_api_key

PASSWORD = "a long pass phrase 42"


@pytest.fixture
def running_worker(start_worker):
    return start_worker("quiet-node")


def api_key_of(username, is_staff):
    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=is_staff)
    return do_create_api_key(user, "monitoring")[1]


def bearer(raw_key):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


def test_anonymous_visitors_learn_only_that_the_node_is_up(client, running_worker, settings):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    for secret in ["quiet-node", settings.REDIS_URL.split("//")[1], str(settings.MODEL_CACHE_DIR), settings.NODE_NAME]:
        assert secret not in response.content.decode()


def test_staff_see_the_details(client, running_worker):
    staff = get_user_model().objects.create_user("mia", password=PASSWORD, is_staff=True)
    client.force_login(staff)
    report = client.get("/health").json()
    assert report["status"] == "ok" and report["redis"]["ok"] and report["model_cache"]["path"]
    assert any(name.startswith("quiet-node@") for name in report["workers"]["seen"])


@pytest.mark.django_db
def test_a_staff_users_api_key_shows_the_details(client):
    report = client.get("/health", **bearer(api_key_of("nora", is_staff=True))).json()
    assert {"database", "redis", "workers", "model_cache"} <= set(report)


@pytest.mark.django_db
def test_an_employees_api_key_or_session_does_not(client):
    response = client.get("/health", **bearer(api_key_of("otto", is_staff=False)))
    assert set(response.json()) == {"status"}
    client.force_login(get_user_model().objects.get(username="otto"))
    assert set(client.get("/health").json()) == {"status"}
    assert set(client.get("/health", **bearer("kot_not-a-key")).json()) == {"status"}


@pytest.mark.django_db
def test_a_node_without_workers_is_degraded(client, settings):
    # An empty Redis database number: the same server, but no worker listens there.
    settings.REDIS_URL = settings.REDIS_URL.rsplit("/", 1)[0] + "/9"
    response = client.get("/health")
    assert response.status_code == 503 and response.json() == {"status": "degraded"}
