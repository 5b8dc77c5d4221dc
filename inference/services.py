"""Writes of the inference app."""
from datetime import datetime, timezone

from django.conf import settings

from inference.heartbeat import left_node_names, read_heartbeats
from inference.models import Node
from inference.redis_client import cluster_redis


def do_sync_nodes(client=None):
    """Bring the Node table in line with the live heartbeats in Redis; return the live Node rows.

    A node whose heartbeat key expired (no beat for HEARTBEAT_TTL_S) is marked down, one that left
    cleanly is marked left; rows are never deleted, so the admin keeps the cluster's history.
    """
    client = client or cluster_redis(settings.REDIS_URL)
    heartbeats = read_heartbeats(client, settings.CLUSTER_TOKEN)
    for info in heartbeats:
        Node.objects.update_or_create(
            name=info.name,
            defaults={
                "host": info.host,
                "port": info.port,
                "services": info.services,
                "total_ram": info.total_ram,
                "free_ram": info.free_ram,
                "cores": info.cores,
                "gflops": info.gflops,
                "cached_models": info.cached_models,
                "status": Node.UP,
                "started_at": as_datetime(info.started_at),
                "last_heartbeat": as_datetime(info.beat_at),
            },
        )
    live_names = [info.name for info in heartbeats]
    gone = Node.objects.filter(status=Node.UP).exclude(name__in=live_names)
    gone.filter(name__in=left_node_names(client)).update(status=Node.LEFT)
    gone.update(status=Node.DOWN)
    return list(Node.objects.filter(name__in=live_names))


def as_datetime(timestamp):
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)
