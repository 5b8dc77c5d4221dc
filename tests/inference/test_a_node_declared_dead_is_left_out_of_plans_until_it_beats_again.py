"""A node a run declared dead (a cut link leaves its heartbeat in Redis until it expires) is left out of later
plans until it beats again, and what waited in its inbox, steps of the plan it was cut from, is dropped; once
it beats again the plan over every node is the one made before."""
import time
from dataclasses import replace

from django.conf import settings

from inference.cluster import pipeline_protocol as protocol
from inference.cluster.coordinator import Coordinator
from inference.cluster.heartbeat import publish_heartbeat
from tests.inference.cluster_helpers import cluster_redis_db, node_info  # noqa: F401 (fixture)


def beat(client, info):
    publish_heartbeat(client, info, settings.CLUSTER_TOKEN)
    time.sleep(0.01)  # the next beat of a node carries a later beat_at


def test_a_node_declared_dead_is_planned_around_until_it_beats_again_and_its_stale_inbox_is_dropped(cluster_redis_db, smollm2_gguf):
    client = cluster_redis_db
    coordinator = Coordinator(client, settings.CLUSTER_TOKEN, smollm2_gguf, n_nodes=3)
    nodes = {name: node_info(name) for name in ("alpha", "beta", "gamma")}  # n_nodes=3 splits over all three
    for info in nodes.values():
        beat(client, info)
    before = coordinator.plan(excluded=set())
    client.rpush(protocol.inbox_key("beta"), b"a step of the plan beta is cut from")

    coordinator.mark_down({"beta"})
    while_cut = coordinator.plan(excluded=set())
    beat(client, nodes["alpha"])  # the others beat on; beta's last heartbeat is still in Redis, unrenewed
    still_cut = coordinator.plan(excluded=set())
    beat(client, replace(nodes["beta"]))  # the link is back: the same node (same start time) beats again
    after = coordinator.plan(excluded=set())

    assert [stage["node"] for stage in before] == ["alpha", "beta", "gamma"]
    assert client.llen(protocol.inbox_key("beta")) == 0
    assert [stage["node"] for stage in while_cut] == [stage["node"] for stage in still_cut] == ["alpha", "gamma"]
    assert after == before
