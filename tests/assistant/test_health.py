"""GET /health: 200 when the database, Redis, a worker and the model cache are all fine, 503 otherwise; the
details are read here as staff (admin_client) see them."""
import pytest
from django.test import override_settings

from tests.embedded_services import free_port


@pytest.fixture
def running_worker(start_worker):
    return start_worker("health-node")


def test_it_is_healthy_with_a_worker_running(admin_client, running_worker, settings):
    response = admin_client.get("/health")
    assert response.status_code == 200, response.json()
    report = response.json()
    assert report["status"] == "ok"
    assert report["database"]["ok"] and report["redis"]["ok"] and report["model_cache"]["ok"]
    assert any(name.startswith("health-node@") for name in report["workers"]["seen"])
    assert report["node"] == settings.NODE_NAME


@pytest.mark.django_db
def test_it_is_unhealthy_when_no_worker_answers(admin_client, settings):
    # An empty Redis database number: the same server, but no worker listens there.
    settings.REDIS_URL = settings.REDIS_URL.rsplit("/", 1)[0] + "/9"
    response = admin_client.get("/health")
    assert response.status_code == 503
    assert response.json()["workers"] == {"ok": False, "seen": []}
    assert response.json()["redis"]["ok"] is True


@pytest.mark.django_db
def test_it_is_unhealthy_when_redis_is_unreachable(admin_client):
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        response = admin_client.get("/health")
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "degraded"  # every process reconnects by itself (issue 16)
    assert report["redis"]["ok"] is False and "error" in report["redis"]
    assert report["workers"]["ok"] is False


@pytest.mark.django_db
def test_it_is_unhealthy_when_the_model_cache_cannot_be_created(admin_client, tmp_path, settings):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.MODEL_CACHE_DIR = blocker / "models"
    response = admin_client.get("/health")
    assert response.status_code == 503
    assert response.json()["model_cache"]["ok"] is False


def test_it_is_down_when_the_database_is_down(client, monkeypatch):
    # No django_db mark: pytest-django blocks database access, as a dead database server would. Nobody can be
    # recognised as staff then, so the answer is the anonymous one.
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "down"}
