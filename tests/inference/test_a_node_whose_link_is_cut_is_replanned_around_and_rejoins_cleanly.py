"""A node's network cut while its process lives (its link down in its network namespace): the generation
re-plans around it as around a dead node and streams the same greedy answer; the cluster marks it down; when
the link returns it rejoins under its name, registered once, and a new plan over all three nodes answers the
same again."""
import time

import pytest
from django.conf import settings

from inference.cluster.coordinator import Coordinator
from inference.cluster.heartbeat import NODE_NAMES_KEY, read_heartbeats
from inference.core.sampling import SamplingParams
from inference.model_files import DEFAULT_MODEL, resolve_model_path
from inference.models import Node
from inference.services import do_sync_nodes
from tests.inference.cluster_helpers import generate_disrupting_a_stage
from tests.inference.cluster_lab import cluster_lab  # noqa: F401 (fixture)

PROMPT = "Tell me a story about a cat."
MAX_TOKENS = 16
REJOIN_TIMEOUT_S = 90


def test_a_cut_link_is_replanned_around_and_the_node_rejoins_once_under_its_name(cluster_lab):
    if not cluster_lab.use_namespaces:
        pytest.skip("network namespaces (ip netns) do not work here: a link cannot be cut without them")
    heartbeats = {}
    cut = []

    def cut_link(name):
        heartbeats.update({info.name: info for info in read_heartbeats(cluster_lab.client, settings.CLUSTER_TOKEN)})
        do_sync_nodes(cluster_lab.client)
        cluster_lab.cut_link(name)
        cut.append(name)

    try:
        run = generate_disrupting_a_stage(cluster_lab, PROMPT, MAX_TOKENS, SamplingParams(), after_tokens=5, stage=1, disrupt=cut_link)
        victim = run.victim
        assert run.generation.stats.dead_nodes == [victim], run.generation.stats.recoveries
        assert victim not in [stage["node"] for stage in run.generation.stats.plans[-1]]
        assert run.generation.results[0].token_ids == run.undisturbed

        wait_until(lambda: victim not in cluster_lab.live_names(), "the cut node's heartbeat to expire")
        do_sync_nodes(cluster_lab.client)
        assert Node.objects.get(name=victim).status == Node.DOWN
    finally:
        for name in cut:
            cluster_lab.restore_link(name)

    wait_until(lambda: victim in cluster_lab.live_names(), "the node to rejoin")
    assert cluster_lab.nodes[victim].poll() is None, "the node process died instead of riding out the cut"
    rejoined = {info.name: info for info in read_heartbeats(cluster_lab.client, settings.CLUSTER_TOKEN)}[victim]
    assert rejoined.started_at == heartbeats[victim].started_at, "the same process, not a restart"
    do_sync_nodes(cluster_lab.client)
    assert list(Node.objects.filter(name=victim).values_list("status", flat=True)) == [Node.UP]
    assert sorted(name.decode() for name in cluster_lab.client.smembers(NODE_NAMES_KEY)) == sorted(heartbeats)

    time.sleep(3)  # a few beats more: the node stays joined, it does not flap
    assert cluster_lab.live_names() == sorted(heartbeats), cluster_lab.log_tail(victim)
    model_path = resolve_model_path(DEFAULT_MODEL, settings.MODEL_CACHE_DIR)
    coordinator = Coordinator(cluster_lab.client, settings.CLUSTER_TOKEN, model_path, n_nodes=3)
    prompt = coordinator.tokenizer.encode_chat([{"role": "user", "content": PROMPT}])
    again = coordinator.generate(prompt, MAX_TOKENS, SamplingParams())
    list(again)
    assert again.stats.dead_nodes == []
    assert victim in [stage["node"] for stage in again.stats.plans[-1]]
    assert again.results[0].token_ids == run.undisturbed


def wait_until(condition, what, timeout_s=REJOIN_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
