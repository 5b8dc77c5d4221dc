"""Shard-aware fetch end to end: the coordinator names the model from the catalog, and nodes whose cache
lacks it copy only their own stage's layers from a live peer before running them."""
import time

import pytest
from django.conf import settings

from inference.cache.peers import live_peer_urls
from inference.cache.store import BlobStore
from inference.cluster.coordinator import Coordinator
from inference.core.engine import Engine
from inference.model_files import DEFAULT_MODEL
from inference.models import ModelEntry, ModelHolding
from inference.core.sampling import SamplingParams
from inference.services import do_fetch_model
from tests.conftest import child_env
from tests.inference.cluster_lab import ClusterLab

MAX_TOKENS = 12
PEER_WAIT_S = 90


@pytest.fixture
def lab(transactional_db, tmp_path):
    database_url = child_env()["DATABASE_URL"]
    # Nodes look the name up in the catalog: from a network namespace they reach a SQLite file, but not a
    # PostgreSQL server listening on the host's 127.0.0.1.
    use_namespaces = None if database_url.startswith("sqlite") else False
    env = {"DATABASE_URL": database_url, "KOTATSU_THREADS": "1"}
    with ClusterLab(tmp_path, settings.CLUSTER_TOKEN, env=env, use_namespaces=use_namespaces) as lab:
        yield lab


def wait_until_serving_its_cache(lab, name):
    deadline = time.monotonic() + PEER_WAIT_S
    while name not in live_peer_urls(lab.client):
        assert time.monotonic() < deadline, f"{name} does not serve its model cache: {lab.log_tail(name)}"
        time.sleep(0.2)


def test_nodes_without_the_model_run_their_stages_from_layers_copied_from_a_peer(lab, tmp_path):
    full = do_fetch_model(DEFAULT_MODEL)  # the shared test cache, and the catalog entry the nodes look up
    empty_caches = {name: tmp_path / f"{name}-cache" for name in ("beta", "gamma")}
    lab.start_node("alpha")  # the shared cache: holds the model
    for name, cache in empty_caches.items():
        lab.start_node(name, MODEL_CACHE_DIR=cache)
    wait_until_serving_its_cache(lab, "alpha")
    ModelHolding.objects.create(
        model=ModelEntry.objects.get(name=DEFAULT_MODEL), node_name="alpha", sha256=full.name, size=full.stat().st_size
    )
    coordinator = Coordinator(lab.client, settings.CLUSTER_TOKEN, full, n_nodes=3, model_ref=DEFAULT_MODEL)
    prompt = coordinator.tokenizer.encode_chat([{"role": "user", "content": "Why is the sky blue?"}])

    generation = coordinator.generate(prompt, MAX_TOKENS, SamplingParams())
    list(generation)

    undisturbed = Engine(full).generate(prompt, MAX_TOKENS, SamplingParams())
    list(undisturbed)
    assert generation.results[0].token_ids == undisturbed.results[0].token_ids
    layers = {stage["node"]: stage["layers"] for stage in generation.stats.plans[-1]}
    for name, cache in empty_caches.items():
        store = BlobStore(cache)
        assert store.ref(DEFAULT_MODEL) is None  # never the whole file
        start, stop = layers[name]
        shards = sorted(path.name for path in (cache / "shards").glob("*.gguf"))
        assert len(shards) == 1 and f".layers-{start}-{stop}" in shards[0], shards
