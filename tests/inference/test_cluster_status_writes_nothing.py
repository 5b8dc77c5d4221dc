"""`cluster status` shows what the heartbeats in Redis say without writing it to the Node table."""
import io

import pytest
from django.core.management import call_command

from inference.cluster.heartbeat import publish_heartbeat
from inference.models import Node
from tests.inference.cluster_helpers import cluster_redis_db, node_info  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_cluster_status_reports_a_new_and_a_silent_node_and_leaves_the_table_as_it_was(cluster_redis_db, settings):
    publish_heartbeat(cluster_redis_db, node_info("alpha"), settings.CLUSTER_TOKEN)
    Node.objects.create(name="silent", host="10.0.0.9", status=Node.UP)
    rows_before = list(Node.objects.values())

    out = io.StringIO()
    call_command("cluster", "status", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[1].split()[:2] == ["alpha", "up"] and lines[2].split()[:2] == ["silent", "down"]
    assert list(Node.objects.values()) == rows_before
