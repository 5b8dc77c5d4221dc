"""The admin's Models page: size, sha256, which nodes hold each model, and a progress bar per running fetch."""
import pytest

from inference.cache.peers import clear_progress, publish_progress
from inference.models import ModelHolding
from inference.plumbing.redis import redis_client
from inference.services import catalog_model


@pytest.mark.django_db
def test_the_models_page_lists_holders_and_a_progress_bar_for_a_running_fetch(admin_client):
    client = redis_client()
    model = catalog_model("whisper-base")
    ModelHolding.objects.create(model=model, node_name="desk-7", sha256=model.sha256, size=model.size)
    publish_progress(client, "whisper-base", "desk-9", 1000, 4000, "desk-7")

    page = admin_client.get("/admin/inference/modelentry/").content.decode()
    clear_progress(client, "whisper-base", "desk-9")

    assert "145.3 MB" in page and model.sha256[:12] in page
    assert "desk-7" in page
    assert 'desk-9 ← desk-7 <progress max="4000" value="1000">' in page
    assert "inference/fetch_progress.js" in page  # reloads the page while a fetch runs


@pytest.mark.django_db
def test_pull_to_all_nodes_says_so_when_no_node_runs_a_worker(admin_client):
    model = catalog_model("whisper-base")

    response = admin_client.post(
        "/admin/inference/modelentry/", {"action": "pull_to_all_nodes", "_selected_action": [model.pk]}, follow=True
    )

    assert "no live node runs a worker" in response.content.decode()
