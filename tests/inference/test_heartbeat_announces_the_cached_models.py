"""A node's heartbeat names the models its cache really holds (blobs live under blobs/<sha256>, not at the root)."""
import time

from django.conf import settings as django_settings

from inference.cluster.heartbeat import read_heartbeats
from inference.plumbing.redis import redis_client
from inference.services import do_import_model
from tests.inference.tiny_gguf import write_tiny_gguf


def announced_models(node_name, timeout_s=60):
    client = redis_client()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for info in read_heartbeats(client, django_settings.CLUSTER_TOKEN):
            if info.name == node_name:
                return info.cached_models
        time.sleep(0.2)
    raise AssertionError(f"no heartbeat of {node_name} within {timeout_s} s")


def test_the_heartbeat_lists_a_model_cached_on_the_node_by_its_catalog_name(start_worker, settings, tmp_path):
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    do_import_model(write_tiny_gguf(tmp_path / "tiny.gguf"), "tiny-model")

    start_worker("announcer", MODEL_CACHE_DIR=tmp_path / "cache")

    assert announced_models("announcer") == ["tiny-model"]
