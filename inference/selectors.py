"""Reads of the inference app."""
import random

from django.conf import settings

from inference.cache.peers import live_peer_urls
from inference.cache.store import BlobStore
from inference.cluster.heartbeat import left_node_names, read_heartbeats
from inference.cluster.shard_server import rolling_stage_stats
from inference.models import ModelEntry, ModelHolding, Node, Plan
from inference.plumbing.redis import redis_client


def live_nodes():
    """Nodes whose heartbeat was current at the last sync (services.do_sync_nodes), by name."""
    return list(Node.objects.filter(status=Node.UP))


def all_nodes():
    return list(Node.objects.all())


def nodes_as_heartbeats_say(client=None):
    """Every node the cluster has seen, as the heartbeats in Redis describe it now, by name; nothing is saved.

    Returns (nodes, changed): `changed` are those whose row differs from Redis (new, beating, or gone
    since the last services.do_sync_nodes), for that service to save."""
    client = client or redis_client()
    heartbeats = read_heartbeats(client, settings.CLUSTER_TOKEN)
    nodes = {node.name: node for node in Node.objects.all()}
    changed = []
    for info in heartbeats:
        node = nodes.setdefault(info.name, Node(name=info.name))
        node.take_heartbeat(info, rolling_stage_stats(client, info.name))
        changed.append(node)
    beating, left = {info.name for info in heartbeats}, left_node_names(client)
    for node in nodes.values():
        if node.status == Node.UP and node.name not in beating:
            node.lose_heartbeat(left_cleanly=node.name in left)
            changed.append(node)
    return sorted(nodes.values(), key=lambda node: node.name), changed


def recent_plans(limit=20):
    return list(Plan.objects.all()[:limit])


def live_peers_holding(model, client):
    """[(node name, cache URL, sha256)] of the other live nodes holding `model`, in random order so
    that many nodes asking at once spread over the holders."""
    urls = live_peer_urls(client)
    holders = [
        (holding.node_name, urls[holding.node_name], holding.sha256)
        for holding in ModelHolding.objects.filter(model=model).exclude(node_name=settings.NODE_NAME)
        if holding.node_name in urls
    ]
    random.shuffle(holders)
    return holders


def model_catalog():
    """Every catalog model with its holdings, for the admin and `models list`."""
    return list(ModelEntry.objects.prefetch_related("holdings", "sources"))


def model_store():
    """This node's model cache."""
    return BlobStore(settings.MODEL_CACHE_DIR)


def cached_model_names():
    """Names of the models this node's cache holds."""
    return {cached.name for cached in model_store().cached_models()}

