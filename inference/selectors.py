"""Reads of the inference app."""
from inference.models import Node, Plan


def live_nodes():
    """Nodes whose heartbeat was current at the last sync (services.do_sync_nodes), by name."""
    return list(Node.objects.filter(status=Node.UP))


def all_nodes():
    return list(Node.objects.all())


def recent_plans(limit=20):
    return list(Plan.objects.all()[:limit])
