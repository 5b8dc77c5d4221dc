"""Where peers find each other's caches, and what fetches are running: small keys in the shared Redis.

    kotatsu:cache-peer:<node>          URL of the node's blob server, expires unless renewed (liveness)
    kotatsu:model-origin:<model>       single-flight lock: the one node allowed to contact the origin
    kotatsu:model-fetch:<model>:<node> {"done", "total", "from"} of a running fetch, for progress bars
"""
import json
import logging
import threading

import redis

from inference.plumbing.outage import RedisOutage

PEER_KEY_PREFIX = "kotatsu:cache-peer:"
PEER_TTL_S = 15
ORIGIN_LOCK_PREFIX = "kotatsu:model-origin:"
# Short, and renewed while bytes flow: a holder killed mid-download blocks the others only this long.
ORIGIN_LOCK_TTL_S = 15
PROGRESS_PREFIX = "kotatsu:model-fetch:"
PROGRESS_TTL_S = 30

log = logging.getLogger(__name__)


def advertise(client, node_name, url, stop_event):
    """Keep this node's cache URL in Redis until stop_event is set; a dead node's key expires by itself."""
    outage = RedisOutage(log, "model cache's advertisement")
    while not stop_event.is_set():
        try:
            client.set(f"{PEER_KEY_PREFIX}{node_name}", url, ex=PEER_TTL_S)
            outage.succeeded()
            delay_s = PEER_TTL_S / 3
        except redis.RedisError as error:
            delay_s = outage.failed(error)
        stop_event.wait(delay_s)


def start_advertising(client, node_name, url):
    stop_event = threading.Event()
    threading.Thread(
        target=advertise, args=(client, node_name, url, stop_event), name="model-cache-advertiser", daemon=True
    ).start()
    return stop_event


def withdraw_advertisement(client, node_name):
    """A clean stop: peers stop copying from this node at once instead of after PEER_TTL_S."""
    client.delete(f"{PEER_KEY_PREFIX}{node_name}")


def live_peer_urls(client):
    """{node name: cache URL} of every node whose advertisement has not expired."""
    keys = sorted(client.scan_iter(match=f"{PEER_KEY_PREFIX}*"))
    urls = client.mget(keys) if keys else []
    return {key.decode()[len(PEER_KEY_PREFIX):]: url.decode() for key, url in zip(keys, urls) if url}


def publish_progress(client, model_name, node_name, done, total, origin):
    value = json.dumps({"done": done, "total": total, "from": origin})
    client.set(f"{PROGRESS_PREFIX}{model_name}:{node_name}", value, ex=PROGRESS_TTL_S)


def clear_progress(client, model_name, node_name):
    client.delete(f"{PROGRESS_PREFIX}{model_name}:{node_name}")


def running_fetches(client):
    """{model name: {node name: {"done", "total", "from"}}} of the fetches reporting progress now."""
    fetches = {}
    keys = sorted(client.scan_iter(match=f"{PROGRESS_PREFIX}*"))
    for key, value in zip(keys, client.mget(keys) if keys else []):
        if value:
            model_name, _, node_name = key.decode()[len(PROGRESS_PREFIX):].rpartition(":")
            fetches.setdefault(model_name, {})[node_name] = json.loads(value)
    return fetches
