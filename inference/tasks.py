"""Celery tasks of the inference app, and the model cache's blob server that each node's worker runs."""
import logging
import os

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from inference.cache.config import load_cache_config
from inference.cache.peer_server import PeerServer
from inference.cache.peers import PEER_KEY_PREFIX, start_advertising
from inference.models import ModelEntry
from inference.plumbing.redis import cluster_redis
from inference.selectors import cached_model_names, model_store
from inference.services import do_evict_model, do_fetch_model, do_sync_nodes, do_verify_models

log = logging.getLogger(__name__)
RUNNING = {}
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


@worker_ready.connect
def start_cache_server(sender, **kwargs):
    """Every node serves its cache to peers while its worker runs: `manage.py node` is all a node needs."""
    config = load_cache_config(os.environ)
    server = PeerServer(model_store(), settings.CLUSTER_TOKEN, port=config.peer_port).start()
    url = f"http://{config.peer_host}:{server.port}"
    RUNNING["server"] = server
    RUNNING["advertising"] = start_advertising(cluster_redis(settings.REDIS_URL), settings.NODE_NAME, url)
    log.info("model cache served to peers at %s", url)


@worker_shutdown.connect
def stop_cache_server(sender, **kwargs):
    if "server" in RUNNING:
        RUNNING.pop("advertising").set()
        RUNNING.pop("server").stop()
        cluster_redis(settings.REDIS_URL).delete(f"{PEER_KEY_PREFIX}{settings.NODE_NAME}")
