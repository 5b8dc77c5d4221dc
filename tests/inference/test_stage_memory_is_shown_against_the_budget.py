"""The memory a node's stages hold, as its shard server measured it, is shown against the node's --memory budget
in `cluster status` and in the admin's node list, and a node whose process grew past its budget says so."""
import dataclasses
import io

import pytest
from django.core.management import call_command

from inference.cluster.heartbeat import publish_heartbeat
from inference.services import do_sync_nodes
from tests.inference.cluster_helpers import cluster_redis_db, node_info  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
MIB = 1024**2


def announce(client, token, name, stage_mib, budget_mib, growth_mib):
    memory = {
        "budget": budget_mib * MIB, "stage_bytes": stage_mib * MIB, "stages": ["qwen 0-8"], "rss": (300 + growth_mib) * MIB,
        "rss_growth": growth_mib * MIB, "over_budget": growth_mib > budget_mib,
    }
    publish_heartbeat(client, dataclasses.replace(node_info(name), memory=memory), token)


def test_cluster_status_and_the_admin_show_stage_bytes_against_the_budget_and_who_grew_past_it(
    admin_client, cluster_redis_db, settings
):
    announce(cluster_redis_db, settings.CLUSTER_TOKEN, "alpha", 443, 560, 400)
    announce(cluster_redis_db, settings.CLUSTER_TOKEN, "beta", 493, 560, 610)
    do_sync_nodes(cluster_redis_db)  # the admin lists the Node table's rows
    out = io.StringIO()

    call_command("cluster", "status", stdout=out)
    page = admin_client.get("/admin/inference/node/").content.decode()

    lines = out.getvalue().splitlines()
    assert "443/560 MiB" in lines[1] and "493/560 MiB" in lines[2]
    assert "node beta is over its memory budget: its process grew 610 MiB since it took its first stage, past --memory 560 MiB" in lines
    assert not any("node alpha is over" in line for line in lines)
    assert "443 / 560 MiB" in page and "493 / 560 MiB <strong>over budget: the process grew 610 MiB</strong>" in page
