"""Redis killed during a cluster generation: the answer finishes, the same greedy tokens, since hidden states and
tokens travel over the nodes' direct data links; a generation asked for while Redis is away gets a ClusterError
naming Redis promptly (a plan needs the heartbeats), and once Redis is back, empty, the nodes announce themselves
again and the next generation succeeds."""
import time

import pytest
from django.conf import settings

from inference.cluster.coordinator import Coordinator
from inference.cluster.pipeline_stepper import ClusterError
from inference.core.sampling import SamplingParams
from inference.plumbing.embedded_redis import start_embedded_redis
from inference.model_files import DEFAULT_MODEL, resolve_model_path
from tests.inference.cluster_lab import cluster_lab  # noqa: F401 (fixture)

PROMPTLY_S = 5
REJOIN_S = 30


def test_redis_killed_mid_answer_the_answer_finishes_and_the_next_is_an_error_until_it_is_back(cluster_lab):
    cluster_lab.start_nodes("alpha", "beta")
    model_path = resolve_model_path(DEFAULT_MODEL, settings.MODEL_CACHE_DIR)
    coordinator = Coordinator(cluster_lab.client, settings.CLUSTER_TOKEN, model_path, n_nodes=2)
    prompt = coordinator.tokenizer.encode_chat([{"role": "user", "content": "Tell me a story about a cat."}])
    undisturbed = coordinator.generate(prompt, 30, SamplingParams())
    list(undisturbed)
    generation = coordinator.generate(prompt, 30, SamplingParams())
    port = int(cluster_lab.redis_url.rsplit(":", 1)[1].split("/")[0])
    for streamed, _ in enumerate(generation, start=1):
        if streamed == 3:
            cluster_lab.redis_process.kill()
            cluster_lab.redis_process.wait()
    assert generation.results[0].token_ids == undisturbed.results[0].token_ids
    assert generation.stats.recoveries == []

    while_away = Coordinator(cluster_lab.client, settings.CLUSTER_TOKEN, model_path, n_nodes=2)
    asked_at = time.monotonic()
    with pytest.raises(ClusterError, match="lost Redis"):
        list(while_away.generate(prompt, 8, SamplingParams()))
    assert time.monotonic() - asked_at < PROMPTLY_S

    cluster_lab.redis_process = start_embedded_redis(
        port, cluster_lab.work_dir / "redis-again", cluster_lab.work_dir / "redis.log", host=cluster_lab.host
    )
    deadline = time.monotonic() + REJOIN_S
    while sorted(cluster_lab.live_names()) != ["alpha", "beta"]:
        assert time.monotonic() < deadline, "the nodes did not announce themselves again"
        time.sleep(0.5)
    again = Coordinator(cluster_lab.client, settings.CLUSTER_TOKEN, model_path, n_nodes=2).generate(prompt, 8, SamplingParams())
    list(again)
    assert len(again.results[0].token_ids) == 8
    assert all(process.poll() is None for process in cluster_lab.nodes.values())
