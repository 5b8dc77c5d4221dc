"""A stage hands its hidden states to the next stage over that stage's data link (a signed frame on a TCP
connection) when its address is known and it listens; when nothing listens there, or no address is known, the same
signed message goes to the next stage's Redis inbox instead."""
import time

import numpy as np
import pytest
from django.conf import settings

from inference.cluster import data_links
from inference.cluster import pipeline_protocol as protocol
from inference.cluster.shard_server import ShardServer
from inference.model_files import DEFAULT_MODEL, resolve_model_path
from tests.inference.cluster_helpers import cluster_redis_db  # noqa: F401 (fixture)

CONTEXT_LENGTH = 64
REPLIES = "test:replies"


@pytest.fixture
def model_path(db):
    return resolve_model_path(DEFAULT_MODEL, settings.MODEL_CACHE_DIR)


def first_stage_step(model_path, next_link, run):
    """The prompt of one sequence for a first stage of layers 0..9 whose next stage, beta, listens at next_link."""
    header = {
        "kind": "forward", "run": run, "epoch": 1, "model": str(model_path), "n_layers": 30, "reply_to": REPLIES,
        "route": [{"node": "alpha", "layers": [0, 10]}, {"node": "beta", "layers": [10, 30]}], "hop": 0,
        "items": [{"seq": 0, "chunks": [3], "prompt": True, "reset": True, "part": 0, "samples": True}],
        "context_length": CONTEXT_LENGTH, "sent_at": time.time(), "links": [None, next_link], "reply_link": None,
    }
    return protocol.encode(settings.CLUSTER_TOKEN, header, np.array([1, 2, 3], dtype=protocol.TOKEN_DTYPE).tobytes())


def serve_until(server, condition, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        server.serve_once(timeout_s=0.2)


def test_hidden_states_go_over_the_next_stages_link_and_through_its_inbox_when_nothing_listens(cluster_redis_db, model_path):
    alpha = ShardServer(cluster_redis_db, settings.CLUSTER_TOKEN, "alpha")
    beta_listener = data_links.Listener()
    beta_inbox = protocol.inbox_key("beta")
    received = []

    cluster_redis_db.rpush(protocol.inbox_key("alpha"), first_stage_step(model_path, ["127.0.0.1", beta_listener.port], "run-1"))
    serve_until(alpha, lambda: received.extend(beta_listener.receive(0.0)) or received)

    (message,) = received
    header, payload = protocol.decode(settings.CLUSTER_TOKEN, message)
    assert header["hop"] == 1 and header["items"][0]["trace"][0]["node"] == "alpha"
    assert len(payload) == 3 * 576 * 4  # three rows of SmolLM2's hidden states, float32
    assert cluster_redis_db.llen(beta_inbox) == 0

    closed_port = beta_listener.port
    beta_listener.close()
    cluster_redis_db.rpush(protocol.inbox_key("alpha"), first_stage_step(model_path, ["127.0.0.1", closed_port], "run-2"))
    serve_until(alpha, lambda: cluster_redis_db.llen(beta_inbox) > 0)

    header, payload = protocol.decode(settings.CLUSTER_TOKEN, cluster_redis_db.lpop(beta_inbox))
    assert header["run"] == "run-2" and header["hop"] == 1 and len(payload) == 3 * 576 * 4
