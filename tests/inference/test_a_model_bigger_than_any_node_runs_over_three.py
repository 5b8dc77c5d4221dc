"""A model bigger than any one node (issue 13): three node processes whose `--memory` is about half of what
Qwen2.5-Coder-1.5B Q4_K_M needs at a 512-token context, none holding it, so the plan spreads it over all three and
each copies only its own stage's bytes from a peer; the greedy tokens are those of the single-process engine, and
`cluster status` shows each stage's measured bytes within its node's budget."""
import io
import time

import pytest
from django.conf import settings
from django.core.management import call_command

from inference.cache.peer_server import PeerServer
from inference.cache.peers import start_advertising, withdraw_advertisement
from inference.cache.store import BlobStore
from inference.cluster.coordinator import Coordinator
from inference.cluster.heartbeat import read_heartbeats
from inference.core.engine import Engine
from inference.core.gguf_loader import read_gguf, stage_tensor_names
from inference.core.sampling import SamplingParams
from inference.model_files import resolve_model_path
from inference.models import ModelEntry, ModelHolding
from inference.selectors import model_store
from tests.conftest import child_env
from tests.inference.cluster_lab import ClusterLab

# Not marked slow: issue 13's done-when test stays in `make test` (about 3 minutes alone on this machine; 12-15 when
# eight sessions shared it).
MODEL = "qwen2.5-coder-1.5b-instruct"
CONTEXT_LENGTH = 512
MEMORY_MIB = 560  # the whole model needs ~1.16 GiB of weights and KV cache at 512 tokens, plus working buffers
MAX_TOKENS = 16
HOLDER = "holder"  # a peer serving the model from the test's cache, not a node of the plan


@pytest.fixture
def lab(transactional_db, tmp_path):
    database_url = child_env()["DATABASE_URL"]
    # Nodes look the model up in the catalog: from a network namespace they reach a SQLite file, not a
    # PostgreSQL server listening on the host's 127.0.0.1.
    use_namespaces = None if database_url.startswith("sqlite") else False
    env = {"DATABASE_URL": database_url, "OPENBLAS_NUM_THREADS": "1", "KOTATSU_THREADS": "1"}
    with ClusterLab(tmp_path, settings.CLUSTER_TOKEN, env=env, use_namespaces=use_namespaces) as lab:
        yield lab


@pytest.fixture
def model_served_by_a_peer(lab):
    """The model's file in the test's cache, served to the nodes as a peer's (with its holding recorded)."""
    path = resolve_model_path(MODEL)
    server = PeerServer(model_store(), settings.CLUSTER_TOKEN).start()
    advertising = start_advertising(lab.client, HOLDER, f"http://{lab.host}:{server.port}")
    ModelHolding.objects.create(model=ModelEntry.objects.get(name=MODEL), node_name=HOLDER, sha256=path.name, size=path.stat().st_size)
    yield path
    advertising.set()
    withdraw_advertisement(lab.client, HOLDER)
    server.stop()


def allocated_bytes(path):
    """Bytes written into a sparse file: only those were transferred."""
    return path.stat().st_blocks * 512


def test_three_nodes_none_able_to_hold_the_model_answer_like_one_process(lab, model_served_by_a_peer, tmp_path, settings):
    path = model_served_by_a_peer
    caches = {name: tmp_path / f"{name}-cache" for name in ("alpha", "beta", "gamma")}
    processes = [lab.start_node(name, "--memory", f"{MEMORY_MIB}M", wait=False, MODEL_CACHE_DIR=cache) for name, cache in caches.items()]
    for name, process in zip(caches, processes):
        lab.wait_until_live(name, process)
    started = time.monotonic()
    coordinator = Coordinator(lab.client, settings.CLUSTER_TOKEN, path, context_length=CONTEXT_LENGTH, model_ref=MODEL)
    assert coordinator.memory.needed_bytes(1) > MEMORY_MIB * 1024**2  # no single node could hold it
    prompt = coordinator.tokenizer.encode_chat([{"role": "user", "content": "Write a Python function that reverses a string."}])

    generation = coordinator.generate(prompt, MAX_TOKENS, SamplingParams(temperature=0.0))
    list(generation)
    cluster_s = time.monotonic() - started

    alone = Engine(path, context_length=CONTEXT_LENGTH).generate(prompt, MAX_TOKENS, SamplingParams(temperature=0.0))
    list(alone)
    assert generation.results[0].token_ids == alone.results[0].token_ids

    (plan,) = generation.stats.plans
    assert sorted(stage["node"] for stage in plan) == sorted(caches)
    model = read_gguf(path)
    for stage in plan:
        start, stop = stage["layers"]
        cache = caches[stage["node"]]
        assert BlobStore(cache).ref(MODEL) is None  # never the whole file
        (shard,) = (cache / "shards").glob("*.gguf")
        names = stage_tensor_names(model, range(start, stop), start == 0, stop == model.config.n_layers)
        share = sum(model.tensors[name].n_bytes for name in names)
        fetched = allocated_bytes(shard)
        assert abs(fetched - share) <= 0.1 * share, (stage, fetched, share)
    memory = {info.name: info.memory for info in read_heartbeats(lab.client, settings.CLUSTER_TOKEN)}
    for name in caches:
        assert 0 < memory[name]["stage_bytes"] <= memory[name]["budget"] == MEMORY_MIB * 1024**2, memory[name]
        assert not memory[name]["over_budget"], memory[name]
    settings.REDIS_URL = lab.redis_url
    status = io.StringIO()
    call_command("cluster", "status", stdout=status)
    node_lines = [line for line in status.getvalue().splitlines() if line.split()[0] in caches]
    assert len(node_lines) == 3 and all(f"/{MEMORY_MIB} MiB" in line for line in node_lines), status.getvalue()
    print(f"cluster run (fetch, load, {MAX_TOKENS} tokens): {cluster_s:.0f} s; memory: {memory}")
