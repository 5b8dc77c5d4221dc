"""Helpers for the cluster tests: a Redis database of their own, node announcements."""
import os
import time

import pytest

from inference.heartbeat import NodeInfo
from inference.redis_client import cluster_redis

GIB = 1024**3
# Membership keys are global to a Redis database; these tests use their own so parallel
# workers of other tests never see their fake nodes.
CLUSTER_TEST_DB = 13


def isolated_redis():
    base = os.environ["REDIS_URL"].rsplit("/", 1)[0]
    client = cluster_redis(f"{base}/{CLUSTER_TEST_DB}")
    client.flushdb()
    return client


def node_info(name, free_gib=8, gflops=10.0, host="127.0.0.1"):
    return NodeInfo(
        name=name, host=host, total_ram=2 * free_gib * GIB, free_ram=free_gib * GIB, cores=2, gflops=gflops,
        started_at=time.time(),
    )


@pytest.fixture
def cluster_redis_db(settings):
    """The isolated database, also as the REDIS_URL that code under test reads from settings."""
    client = isolated_redis()
    settings.REDIS_URL = f"{settings.REDIS_URL.rsplit('/', 1)[0]}/{CLUSTER_TEST_DB}"
    yield client
    client.flushdb()
