import pytest

from inference.cluster.heartbeat import publish_heartbeat
from inference.models import Node
from inference.cluster.pipeline_protocol import stats_key
from inference.services import do_record_plan
from tests.inference.cluster_helpers import cluster_redis_db, node_info  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_the_node_list_draws_the_topology_of_the_latest_plan_and_refreshes(admin_client, cluster_redis_db, settings):
    for name in ("alpha", "beta"):
        publish_heartbeat(cluster_redis_db, node_info(name), settings.CLUSTER_TOKEN)
    Node.objects.create(name="gone", host="10.0.0.9", status=Node.UP)
    rolling = {"compute_ms": 12.5, "wait_ms": 0.7, "bytes_in": 2304, "bytes_out": 8, "batch": 1}
    cluster_redis_db.hset(stats_key("beta"), mapping=rolling)
    do_record_plan("smollm2.gguf", [{"node": "alpha", "layers": [0, 12]}, {"node": "beta", "layers": [12, 30]}], 4096)

    page = admin_client.get("/admin/inference/node/").content.decode()

    assert '<meta http-equiv="refresh"' in page
    assert "<svg" in page
    assert "stage 1: layers 0–11" in page and "stage 2: layers 12–29" in page
    assert "12.5 ms compute, 0.7 ms wait" in page
    assert "<line " in page
    assert "down (missed heartbeats)" in page  # what Redis says of "gone"


def test_viewing_the_node_list_writes_nothing(admin_client, cluster_redis_db, settings):
    publish_heartbeat(cluster_redis_db, node_info("alpha"), settings.CLUSTER_TOKEN)
    Node.objects.create(name="gone", host="10.0.0.9", status=Node.UP)
    rows_before = list(Node.objects.values())

    assert admin_client.get("/admin/inference/node/").status_code == 200

    assert list(Node.objects.values()) == rows_before  # beat's sync_nodes keeps the table, not page views


def test_the_plan_list_shows_each_stage_and_its_layers(admin_client):
    do_record_plan("smollm2.gguf", [{"node": "alpha", "layers": [0, 12]}, {"node": "beta", "layers": [12, 30]}], 4096)

    page = admin_client.get("/admin/inference/plan/").content.decode()

    assert "alpha [0–11] → beta [12–29]" in page
