"""Cluster membership through Redis, free of Django: heartbeats with a TTL, signed with CLUSTER_TOKEN.

A node is live while its heartbeat key exists; the key expires HEARTBEAT_TTL_S after the last beat,
so a node that stops beating (crash, cable pulled) drops out without anyone removing it. There is no
list of worker addresses anywhere: whoever shares REDIS_URL and CLUSTER_TOKEN is in the cluster.

Every heartbeat carries an HMAC of its content under the cluster token, and the cluster remembers
a fingerprint of its token: a node started with another token is refused at join, and a heartbeat
forged without the token is ignored by readers.
"""
import hashlib
import hmac
import json
import time
from dataclasses import asdict, dataclass, field

HEARTBEAT_TTL_S = 10
HEARTBEAT_INTERVAL_S = 1.0
NODE_KEY_PREFIX = "kotatsu:node:"
NODE_NAMES_KEY = "kotatsu:nodes"
LEFT_NODES_KEY = "kotatsu:nodes:left"
TOKEN_FINGERPRINT_KEY = "kotatsu:cluster:token-fingerprint"
TOKEN_FINGERPRINT_MESSAGE = b"kotatsu cluster token fingerprint"


class ClusterTokenError(Exception):
    """This node's CLUSTER_TOKEN is not the one the cluster on REDIS_URL was started with."""


@dataclass(frozen=True)
class NodeInfo:
    """What a node announces about itself in every heartbeat."""

    name: str
    host: str
    total_ram: int
    free_ram: int  # bytes this node offers to model shards (declared with --memory, or available RAM)
    cores: int
    gflops: float  # measured fp32 matmul throughput, from the calibration at start
    started_at: float
    port: int = 0  # web server, when this node runs one
    services: dict = field(default_factory=dict)  # service name -> port (e.g. the cache's file server)
    cached_models: list = field(default_factory=list)
    # The shard server's memory: budget (--memory, 0: none), stage_bytes (measured: weights + KV cache + working
    # buffers of the stages held), stages, rss, rss_growth (since just before its first stage, kernels compiled),
    # over_budget (rss_growth > budget) and working ([model reference, context length, bytes] of the working buffers
    # it measured, which coordinators plan with).
    memory: dict = field(default_factory=dict)
    beat_at: float = 0.0

    def key(self):
        return node_key(self.name)


def node_key(name):
    return f"{NODE_KEY_PREFIX}{name}"


def sign(payload, token):
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(token.encode(), canonical, hashlib.sha256).hexdigest()


def token_fingerprint(token):
    return hmac.new(token.encode(), TOKEN_FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()


def join_cluster(client, token):
    """Refuse to join a cluster started with another token; the first node sets the fingerprint."""
    mine = token_fingerprint(token)
    client.set(TOKEN_FINGERPRINT_KEY, mine, nx=True)
    theirs = client.get(TOKEN_FINGERPRINT_KEY).decode()
    if not hmac.compare_digest(mine, theirs):
        raise ClusterTokenError(
            "CLUSTER_TOKEN: refused, the nodes already on this REDIS_URL use another cluster token"
        )


def publish_heartbeat(client, info, token):
    payload = asdict(info)
    payload["beat_at"] = time.time()
    message = json.dumps({"node": payload, "signature": sign(payload, token)})
    pipeline = client.pipeline()
    pipeline.set(info.key(), message, ex=HEARTBEAT_TTL_S)
    pipeline.sadd(NODE_NAMES_KEY, info.name)
    pipeline.srem(LEFT_NODES_KEY, info.name)
    pipeline.execute()


def leave_cluster(client, name):
    """A clean exit: gone from the live nodes at once instead of after the TTL."""
    pipeline = client.pipeline()
    pipeline.delete(node_key(name))
    pipeline.srem(NODE_NAMES_KEY, name)
    pipeline.sadd(LEFT_NODES_KEY, name)
    pipeline.execute()


def read_heartbeats(client, token):
    """NodeInfo of every live node whose heartbeat is signed with `token`, sorted by name."""
    names = sorted(name.decode() for name in client.smembers(NODE_NAMES_KEY))
    if not names:
        return []
    nodes = []
    for name, raw in zip(names, client.mget([node_key(name) for name in names])):
        if raw is None:
            client.srem(NODE_NAMES_KEY, name)
            continue
        message = json.loads(raw)
        if hmac.compare_digest(sign(message["node"], token), message["signature"]):
            nodes.append(NodeInfo(**message["node"]))
    return nodes


def left_node_names(client):
    return {name.decode() for name in client.smembers(LEFT_NODES_KEY)}
