from django.conf import settings

from inference.cluster.coordinator import Coordinator
from inference.model_files import DEFAULT_MODEL, resolve_model_path
from inference.models import Node
from inference.services import do_sync_nodes
from tests.inference.cluster_lab import cluster_lab  # noqa: F401 (fixture)


def coordinator_on(lab):
    return Coordinator(lab.client, settings.CLUSTER_TOKEN, resolve_model_path(DEFAULT_MODEL, settings.MODEL_CACHE_DIR))


def planned_nodes(coordinator):
    return sorted(stage["node"] for stage in coordinator.plan(excluded=set()))


def test_a_node_joining_while_idle_is_in_the_next_plan_and_one_leaving_is_removed(cluster_lab):
    coordinator = coordinator_on(cluster_lab)
    # Each node offers 60% of what the model needs over two nodes, so a plan needs every live node.
    share = str(int(coordinator.memory.needed_bytes(2) * 0.6))
    cluster_lab.start_node("alpha", "--memory", share)
    cluster_lab.start_node("beta", "--memory", share)
    assert planned_nodes(coordinator) == ["alpha", "beta"]

    cluster_lab.start_node("gamma", "--memory", share)
    assert planned_nodes(coordinator) == ["alpha", "beta", "gamma"]
    do_sync_nodes(cluster_lab.client)

    assert cluster_lab.stop_node("beta") == 0
    assert planned_nodes(coordinator) == ["alpha", "gamma"]
    do_sync_nodes(cluster_lab.client)
    assert Node.objects.get(name="beta").status == Node.LEFT
    assert Node.objects.get(name="gamma").status == Node.UP


def test_a_node_with_a_wrong_cluster_token_is_refused(cluster_lab):
    cluster_lab.start_node("alpha")

    intruder = cluster_lab.start_node("intruder", wait=False, CLUSTER_TOKEN="not-the-cluster-token")

    assert intruder.wait(timeout=120) == 1
    assert "CLUSTER_TOKEN: refused" in cluster_lab.log_tail("intruder")
    assert cluster_lab.live_names() == ["alpha"]


def test_declared_memory_gives_a_proportional_plan(cluster_lab):
    coordinator = coordinator_on(cluster_lab)
    # 2:1, and neither can hold the whole model alone.
    total, working = coordinator.memory.total_bytes, coordinator.memory.working_bytes  # each node has its own buffers
    cluster_lab.start_node("small", "--memory", str(int(total * 0.45) + working))
    cluster_lab.start_node("big", "--memory", str(int(total * 0.9) + working))

    plan = coordinator.plan(excluded=set())

    # About 2:1 of the 30 layers: the big node's share also holds the embedding, so it may end a layer early.
    split = plan[0]["layers"][1]
    assert plan == [{"node": "big", "layers": [0, split]}, {"node": "small", "layers": [split, 30]}]
    assert split in (19, 20)
