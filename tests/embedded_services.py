"""Pytest plugin, loaded before Django reads its settings: a fresh VAR_DIR per run, and an embedded
Redis when REDIS_URL is not set (so `make test` needs nothing installed system-wide)."""
import atexit
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    var_dir = Path(tempfile.mkdtemp(prefix="kotatsu-test-"))
    os.environ["VAR_DIR"] = str(var_dir)
    early_config.stash[VAR_DIR_KEY] = var_dir
    # Questions in tests are answered by SmolLM2 ("auto" could pick the 1.5B, minutes per answer); a test of the
    # choice itself overrides these settings.
    os.environ.setdefault("KOTATSU_ANSWER_MODEL", "smollm2-135m-instruct")
    os.environ.setdefault("KOTATSU_CHAT_MODEL", "smollm2-135m-instruct")
    # Likewise MiniLM embeds: EmbeddingGemma (the default) is 1.2 GB per process and five times slower; the tests
    # of the multilingual path and of switching models name it.
    os.environ.setdefault("INGEST_EMBEDDING_MODEL", "all-minilm-l6-v2")
    if not os.environ.get("REDIS_URL"):
        from inference.plumbing.embedded_redis import start_embedded_redis

        port = free_port()
        redis_process = start_embedded_redis(port, var_dir / "redis", var_dir / "redis.log")
        # pytest_unconfigure does not run when a conftest fails to import; atexit still does.
        atexit.register(redis_process.kill)
        early_config.stash[REDIS_KEY] = redis_process
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    return (yield)


def pytest_unconfigure(config):
    redis_process = config.stash.get(REDIS_KEY, None)
    if redis_process is not None:
        redis_process.terminate()
        redis_process.wait(timeout=10)
    var_dir = config.stash.get(VAR_DIR_KEY, None)
    if var_dir is not None:
        shutil.rmtree(var_dir, ignore_errors=True)


REDIS_KEY = pytest.StashKey()
VAR_DIR_KEY = pytest.StashKey()
