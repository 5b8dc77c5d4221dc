import pytest
from django.conf import settings

from inference.cluster.heartbeat import (
    HEARTBEAT_TTL_S,
    ClusterTokenError,
    join_cluster,
    leave_cluster,
    publish_heartbeat,
    read_heartbeats,
)
from inference.models import Node
from inference.selectors import live_nodes
from inference.services import do_sync_nodes
from tests.inference.cluster_helpers import cluster_redis_db, node_info  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_a_heartbeat_puts_the_node_in_the_table_as_up(cluster_redis_db):
    publish_heartbeat(cluster_redis_db, node_info("alpha", free_gib=8), settings.CLUSTER_TOKEN)

    do_sync_nodes(cluster_redis_db)

    node = Node.objects.get(name="alpha")
    assert node.status == Node.UP
    assert node.free_ram == 8 * 1024**3
    assert [n.name for n in live_nodes()] == ["alpha"]


def test_a_heartbeat_expires_after_the_ttl(cluster_redis_db):
    info = node_info("alpha")
    publish_heartbeat(cluster_redis_db, info, settings.CLUSTER_TOKEN)

    assert 0 < cluster_redis_db.ttl(info.key()) <= HEARTBEAT_TTL_S == 10


def test_a_node_whose_heartbeat_expired_is_marked_down(cluster_redis_db):
    info = node_info("alpha")
    publish_heartbeat(cluster_redis_db, info, settings.CLUSTER_TOKEN)
    do_sync_nodes(cluster_redis_db)
    cluster_redis_db.pexpire(info.key(), 1)  # what the TTL does 10 s after the last beat

    while cluster_redis_db.exists(info.key()):
        pass
    do_sync_nodes(cluster_redis_db)

    assert Node.objects.get(name="alpha").status == Node.DOWN
    assert live_nodes() == []


def test_a_node_that_leaves_cleanly_is_marked_left(cluster_redis_db):
    publish_heartbeat(cluster_redis_db, node_info("alpha"), settings.CLUSTER_TOKEN)
    publish_heartbeat(cluster_redis_db, node_info("beta"), settings.CLUSTER_TOKEN)
    do_sync_nodes(cluster_redis_db)

    leave_cluster(cluster_redis_db, "beta")
    do_sync_nodes(cluster_redis_db)

    assert Node.objects.get(name="beta").status == Node.LEFT
    assert [n.name for n in live_nodes()] == ["alpha"]


def test_it_refuses_a_node_with_another_cluster_token(cluster_redis_db):
    join_cluster(cluster_redis_db, "the-cluster-token")

    with pytest.raises(ClusterTokenError, match="CLUSTER_TOKEN"):
        join_cluster(cluster_redis_db, "another-token")
    join_cluster(cluster_redis_db, "the-cluster-token")


def test_it_ignores_heartbeats_signed_with_another_token(cluster_redis_db):
    publish_heartbeat(cluster_redis_db, node_info("intruder"), "another-token")
    publish_heartbeat(cluster_redis_db, node_info("member"), settings.CLUSTER_TOKEN)

    assert [info.name for info in read_heartbeats(cluster_redis_db, settings.CLUSTER_TOKEN)] == ["member"]
