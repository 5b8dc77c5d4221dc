"""Celery tasks of the inference app (the model cache's blob server is a service of `manage.py node`)."""
from celery import shared_task

from inference.cache.peers import live_peer_urls
from inference.models import ModelEntry
from inference.plumbing.queues import node_queue
from inference.plumbing.redis import redis_client
from inference.selectors import cached_model_names
from inference.services import (
    do_evict_model, do_release_lost_fetches, do_request_fetches, do_run_fetch, do_sync_nodes, do_verify_models,
)

# A sync that waited longer than the interval is superseded by the next one.
NODE_SYNC_INTERVAL_S = 5


@shared_task(expires=NODE_SYNC_INTERVAL_S)
def sync_nodes():
    """Mark nodes whose heartbeat expired as down in the Node table, even when nobody looks (beat, every 5 s)."""
    do_sync_nodes()


@shared_task
def fetch_model(fetch_id):
    """Run a recorded ModelFetch in this node's cache (sent to the node's own queue); returns the path, or None
    when the fetch was finished or running already (a message sent twice)."""
    path = do_run_fetch(fetch_id)
    return None if path is None else str(path)


def fetch_on_live_nodes(name):
    """Have every live node's worker fetch the model: the fetches are recorded, then sent; {node name: fetch id}.
    A message that cannot be sent now (Redis away) is sent by the resend sweep."""
    fetch_ids = do_request_fetches(name, live_peer_urls(redis_client()))
    for node_name, fetch_id in fetch_ids.items():
        send_fetch(fetch_id, node_name)
    return fetch_ids


def send_fetch(fetch_id, node_name):
    fetch_model.apply_async(args=[fetch_id], queue=node_queue(node_name))


def resend_lost_fetches(sent_before, messages_lost=False):
    """Part of beat's resend sweep (ingest.tasks.resend_lost_work, which decides whether Redis lost its messages):
    send again the fetches of live nodes whose message was lost."""
    live_nodes = list(live_peer_urls(redis_client()))
    for fetch_id, node_name in do_release_lost_fetches(live_nodes, sent_before, messages_lost=messages_lost):
        send_fetch(fetch_id, node_name)


@shared_task
def verify_cached_model(model_id):
    """Rehash this node's copy (a corrupt one is quarantined); returns whether it is intact, None if absent."""
    name = ModelEntry.objects.get(pk=model_id).name
    results = do_verify_models(name) if name in cached_model_names() else []
    return all(intact for _, _, intact in results) if results else None


@shared_task
def evict_cached_model(model_id):
    return do_evict_model(ModelEntry.objects.get(pk=model_id).name)

