"""Celery tasks of the inference app (the model cache's blob server is a service of `manage.py node`)."""
from celery import shared_task

from inference.models import ModelEntry
from inference.selectors import cached_model_names
from inference.services import do_evict_model, do_fetch_model, do_sync_nodes, do_verify_models

# A sync that waited longer than the interval is superseded by the next one.
NODE_SYNC_INTERVAL_S = 5


@shared_task(expires=NODE_SYNC_INTERVAL_S)
def sync_nodes():
    """Mark nodes whose heartbeat expired as down in the Node table, even when nobody looks (beat, every 5 s)."""
    do_sync_nodes()


@shared_task
def fetch_model(model_id):
    """Make the model ready in this node's cache (sent to a node's own queue); returns the path."""
    return str(do_fetch_model(ModelEntry.objects.get(pk=model_id).name))


@shared_task
def verify_cached_model(model_id):
    """Rehash this node's copy (a corrupt one is quarantined); returns whether it is intact, None if absent."""
    name = ModelEntry.objects.get(pk=model_id).name
    results = do_verify_models(name) if name in cached_model_names() else []
    return all(intact for _, _, intact in results) if results else None


@shared_task
def evict_cached_model(model_id):
    return do_evict_model(ModelEntry.objects.get(pk=model_id).name)

