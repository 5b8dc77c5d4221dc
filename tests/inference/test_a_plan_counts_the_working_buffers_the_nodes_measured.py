"""The planner counts each stage's working buffers as the nodes measured them (their heartbeats carry the figure per
model and context length) when that is more than the coordinator's own measurement: the nodes' figure is what their
budgets are checked against, so a plan made with less would be refused at load."""
import dataclasses

from django.conf import settings

from inference.cluster.coordinator import Coordinator
from inference.cluster.heartbeat import publish_heartbeat
from inference.cluster.planner import GIB
from inference.model_files import cached_model_path
from tests.inference.cluster_helpers import cluster_redis_db, node_info  # noqa: F401 (fixture)

CONTEXT_LENGTH = 512


def announce(client, free_bytes, working):
    """Three nodes offering free_bytes each, whose shard servers measured `working` ([model, context, bytes] rows)."""
    for name in ("alpha", "beta", "gamma"):
        info = dataclasses.replace(node_info(name, free_gib=free_bytes / GIB), memory={"working": working})
        publish_heartbeat(client, info, settings.CLUSTER_TOKEN)


def test_a_larger_working_buffer_measured_by_the_nodes_spreads_the_model_over_more_of_them(cluster_redis_db):
    path = cached_model_path()
    coordinator = Coordinator(cluster_redis_db, settings.CLUSTER_TOKEN, path, context_length=CONTEXT_LENGTH)
    own = coordinator.memory.working_bytes
    total = coordinator.memory.total_bytes
    assert own > 0
    free = total + own + 8 * 1024**2  # one node holds the model with the coordinator's figure
    measured = own + total // 2  # but not with the nodes' (while a third of it per node still fits)

    # Figures for another context length or another model are not this plan's.
    announce(cluster_redis_db, free, [[str(path), 2 * CONTEXT_LENGTH, measured], ["other.gguf", CONTEXT_LENGTH, measured]])
    assert len(coordinator.plan(set())) == 1
    assert coordinator.memory.working_bytes == own

    announce(cluster_redis_db, free, [[str(path), CONTEXT_LENGTH, measured]])
    route = coordinator.plan(set())
    assert coordinator.memory.working_bytes == measured
    assert len(route) > 1
    assert all(coordinator.memory.stage_bytes(*stage["layers"]) <= free for stage in route)
