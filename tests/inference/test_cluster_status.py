import io
import json

import pytest
from django.core.management import call_command

from inference.cluster.heartbeat import leave_cluster, publish_heartbeat
from inference.services import do_record_plan, do_sync_nodes
from tests.inference.cluster_helpers import cluster_redis_db, node_info  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def cluster_status(*flags):
    out = io.StringIO()
    call_command("cluster", "status", *flags, stdout=out)
    return out.getvalue()


def test_cluster_status_lists_live_nodes_first_and_the_latest_plan(cluster_redis_db, settings):
    for name, free_gib in (("beta", 16), ("alpha", 8), ("gone", 4)):
        publish_heartbeat(cluster_redis_db, node_info(name, free_gib=free_gib), settings.CLUSTER_TOKEN)
    do_sync_nodes(cluster_redis_db)
    leave_cluster(cluster_redis_db, "gone")
    do_record_plan("smollm2", [{"node": "beta", "layers": [0, 20]}, {"node": "alpha", "layers": [20, 30]}], 4096)

    report = json.loads(cluster_status("--json"))
    text = cluster_status()

    assert [(node["name"], node["status"]) for node in report["nodes"]] == [("alpha", "up"), ("beta", "up"), ("gone", "left")]
    assert report["nodes"][1]["free_ram"] == 16 * 1024**3
    assert report["latest_plan"] == [{"node": "beta", "layers": [0, 20]}, {"node": "alpha", "layers": [20, 30]}]
    assert "latest plan (smollm2): beta layers 0-19, alpha layers 20-29" in text
    assert text.splitlines()[1].startswith("alpha")
