"""`node --memory` binds the shard server: before loading a stage it adds up the weights as the loader will hold
them, a KV cache at the plan's context length and the measured working buffers of a forward, and refuses a stage
that does not fit with one line to the coordinator (and drops steps sent for it, serving on); a stage that fits
is held, and reported, as measured."""
import re
from functools import lru_cache

import pytest
from django.conf import settings

from inference.cluster import pipeline_protocol as protocol
from inference.cluster.shard_server import ShardServer
from inference.core.gguf_loader import read_gguf
from inference.core.kv_cache import KVCache
from inference.model_files import DEFAULT_MODEL, resolve_model_path
from tests.inference.cluster_helpers import cluster_redis_db  # noqa: F401 (fixture)

MIB = 1024**2
CONTEXT_LENGTH = 512
REPLIES = "test:load-replies"


@pytest.fixture
def model_path(db):
    return resolve_model_path(DEFAULT_MODEL, settings.MODEL_CACHE_DIR)


@lru_cache
def config_of(path):
    return read_gguf(path).config  # parsing its header takes seconds


def load_reply(client, server, model_path, layers):
    header = {
        "kind": "load", "run": "run-1", "epoch": 1, "model": str(model_path), "n_layers": config_of(model_path).n_layers,
        "reply_to": REPLIES, "layers": layers, "context_length": CONTEXT_LENGTH,
    }
    client.rpush(protocol.inbox_key(server.node_name), protocol.encode(settings.CLUSTER_TOKEN, header))
    server.serve_once(timeout_s=1)
    return protocol.decode(settings.CLUSTER_TOKEN, client.lpop(REPLIES))[0]


def test_a_stage_over_the_budget_is_refused_with_one_line_and_nothing_stays_loaded(cluster_redis_db, model_path):
    server = ShardServer(cluster_redis_db, settings.CLUSTER_TOKEN, "small", memory_budget=20 * MIB)

    reply = load_reply(cluster_redis_db, server, model_path, [0, 10])

    assert reply["kind"] == "failed"
    assert re.fullmatch(
        r"node small refuses layers 0\.\.9: they need \d+ MiB \(\d+ MiB weights \+ \d+ MiB KV cache at 512 tokens"
        r" \+ \d+ MiB working buffers\), over its --memory budget of 20 MiB",
        reply["error"],
    ), reply["error"]
    assert not server.stages and server.memory_report()["stage_bytes"] == 0


def test_a_stage_within_the_budget_is_held_and_reported_as_measured(cluster_redis_db, model_path):
    server = ShardServer(cluster_redis_db, settings.CLUSTER_TOKEN, "small", memory_budget=200 * MIB)
    config = config_of(model_path)

    reply = load_reply(cluster_redis_db, server, model_path, [0, 10])

    assert reply["kind"] == "loaded", reply
    (stage,) = server.stages.values()
    kv_cache = KVCache.bytes_per_position(10, config.n_kv_heads, config.head_dim) * CONTEXT_LENGTH
    (working,) = server.working_bytes.values()
    report = server.memory_report()
    assert report["stage_bytes"] == stage.n_bytes() + kv_cache + working <= 200 * MIB
    assert 0 < working < 200 * MIB
    assert report["budget"] == 200 * MIB and not report["over_budget"]


def test_steps_for_a_stage_over_the_budget_are_dropped_and_the_server_keeps_serving(cluster_redis_db, model_path):
    server = ShardServer(cluster_redis_db, settings.CLUSTER_TOKEN, "small", memory_budget=20 * MIB)
    n_layers = config_of(model_path).n_layers
    step = {
        "kind": "forward", "run": "run-1", "epoch": 1, "model": str(model_path), "n_layers": n_layers, "reply_to": REPLIES,
        "route": [{"node": "small", "layers": [0, n_layers]}], "hop": 0, "items": [{"seq": 0, "chunks": [1]}],
        "context_length": CONTEXT_LENGTH, "sent_at": 0.0,
    }
    ping = {"kind": "ping", "run": "run-1", "epoch": 1, "reply_to": REPLIES, "ping": 1}
    inbox = protocol.inbox_key("small")
    cluster_redis_db.rpush(inbox, protocol.encode(settings.CLUSTER_TOKEN, step, b"\x01\x00\x00\x00"), protocol.encode(settings.CLUSTER_TOKEN, ping))

    server.serve_once(timeout_s=1)

    (pong,) = [protocol.decode(settings.CLUSTER_TOKEN, message)[0] for message in cluster_redis_db.lrange(REPLIES, 0, -1)]
    assert pong["kind"] == "pong" and not server.stages
