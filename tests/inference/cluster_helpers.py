"""Helpers for the cluster tests: a Redis database of their own, node announcements, disrupted runs."""
import os
import time
from dataclasses import dataclass

import pytest
from django.conf import settings

from inference.cluster.coordinator import Coordinator
from inference.core.engine import DEFAULT_CONTEXT_LENGTH, Engine
from inference.cluster.heartbeat import NodeInfo
from inference.model_files import DEFAULT_MODEL, resolve_model_path
from inference.plumbing.redis import redis_client

GIB = 1024**3
# Membership keys are global to a Redis database; these tests use their own so parallel
# workers of other tests never see their fake nodes.
CLUSTER_TEST_DB = 13


def isolated_redis():
    base = os.environ["REDIS_URL"].rsplit("/", 1)[0]
    client = redis_client(f"{base}/{CLUSTER_TEST_DB}")
    client.flushdb()
    return client


def node_info(name, free_gib=8, gflops=10.0, host="127.0.0.1"):
    return NodeInfo(
        name=name, host=host, total_ram=2 * free_gib * GIB, free_ram=free_gib * GIB, cores=2, gflops=gflops,
        started_at=time.time(),
    )


@pytest.fixture
def cluster_redis_db(settings):
    """The isolated database, also as the REDIS_URL that code under test reads from settings."""
    client = isolated_redis()
    settings.REDIS_URL = f"{settings.REDIS_URL.rsplit('/', 1)[0]}/{CLUSTER_TEST_DB}"
    yield client
    client.flushdb()


@dataclass
class DisruptedRun:
    generation: object  # the coordinator's Generation, run to its end
    streamed: list  # token ids as the caller saw them stream, None for held-back text
    victim: str  # the node disrupted
    undisturbed: list  # token ids of the same prompt on the single-node engine


def start_three_nodes(cluster_lab, *node_args):
    """alpha, beta and gamma started side by side (node_args: e.g. "--memory", "800M"), once all three are live."""
    names = ("alpha", "beta", "gamma")
    processes = [cluster_lab.start_node(name, *node_args, wait=False) for name in names]
    for name, process in zip(names, processes):
        cluster_lab.wait_until_live(name, process)


def stream_disrupting_a_stage(generation, after_tokens, stage, disrupt):
    """Iterate the generation; once `after_tokens` have streamed, disrupt(node name) hits the node of route position
    `stage` in the current plan. Returns the token ids as they streamed (None for held-back text) and the victim;
    an error the generation raises is the caller's (the victim is then `generation.stats.plans[0][stage]`)."""
    streamed, victim = [], None
    for delta in generation:
        streamed.append(delta.token_id)
        if len(streamed) == after_tokens:
            victim = generation.stats.plans[-1][stage]["node"]
            disrupt(victim)
    return streamed, victim


def generate_disrupting_a_stage(
    cluster_lab, prompt_text, max_tokens, params, after_tokens, stage, disrupt,
    model_path=None, context_length=DEFAULT_CONTEXT_LENGTH, node_args=(),
):
    """Three nodes, a generation of prompt_text over them; once `after_tokens` have streamed, disrupt(node name)
    hits the node of route position `stage`. The same prompt then runs undisturbed on the single-node engine.
    Default: SmolLM2 split three ways; with node_args ("--memory", SIZE) the planner spreads the model as the
    nodes' budgets allow."""
    start_three_nodes(cluster_lab, *node_args)
    model_path = model_path or resolve_model_path(DEFAULT_MODEL, settings.MODEL_CACHE_DIR)
    coordinator = Coordinator(
        cluster_lab.client, settings.CLUSTER_TOKEN, model_path, context_length=context_length, n_nodes=None if node_args else 3
    )
    prompt = coordinator.tokenizer.encode_chat([{"role": "user", "content": prompt_text}])

    generation = coordinator.generate(prompt, max_tokens, params)
    streamed, victim = stream_disrupting_a_stage(generation, after_tokens, stage, disrupt)

    undisturbed = Engine(model_path, context_length=context_length).generate(prompt, max_tokens, params)
    list(undisturbed)
    return DisruptedRun(generation, streamed, victim, undisturbed.results[0].token_ids)
