import logging
import time

from django.conf import settings

from inference.cluster import data_links
from inference.cluster import pipeline_protocol as protocol
from inference.cluster.shard_server import ShardServer
from tests.inference.cluster_helpers import cluster_redis_db  # noqa: F401 (fixture)

PONGS = "test:pongs"


def ping(number):
    return {"kind": "ping", "run": "run-1", "epoch": 1, "reply_to": PONGS, "ping": number}


def answered_pings(client):
    return [protocol.decode(settings.CLUSTER_TOKEN, message)[0]["ping"] for message in client.lrange(PONGS, 0, -1)]


def forged_and_signed_pings():
    """A ping signed with another token, one signed and edited afterwards, 8 bytes of nothing, then ping 3 signed."""
    signed = protocol.encode(settings.CLUSTER_TOKEN, ping(3))
    tampered = signed.replace(b'"ping":3', b'"ping":9')
    return [protocol.encode("not-the-cluster-token", ping(1)), tampered, b"\x00" * 8, signed]


def refusals(caplog):
    return [record.getMessage() for record in caplog.records if "not signed with the cluster token" in record.getMessage()]


def test_a_shard_server_drops_messages_not_signed_with_the_cluster_token(cluster_redis_db, caplog):
    server = ShardServer(cluster_redis_db, settings.CLUSTER_TOKEN, "alpha")
    cluster_redis_db.rpush(protocol.inbox_key("alpha"), *forged_and_signed_pings())

    with caplog.at_level(logging.WARNING, logger="inference.cluster.shard_server"):
        server.serve_once(timeout_s=1)

    # The server works through its inbox in order: answering the last ping proves it saw the forged ones.
    assert answered_pings(cluster_redis_db) == [3]
    assert len(refusals(caplog)) == 3


def test_a_shard_server_drops_frames_on_its_data_link_not_signed_with_the_cluster_token(cluster_redis_db, caplog):
    server = ShardServer(cluster_redis_db, settings.CLUSTER_TOKEN, "alpha")
    links = data_links.Links()
    for message in forged_and_signed_pings():
        assert links.send(("127.0.0.1", server.listener.port), message)

    with caplog.at_level(logging.WARNING, logger="inference.cluster.shard_server"):
        deadline = time.monotonic() + 10
        while not answered_pings(cluster_redis_db) and time.monotonic() < deadline:
            server.serve_once(timeout_s=0.2)

    # One connection keeps the frames in order: answering the last ping proves the forged ones came first.
    assert answered_pings(cluster_redis_db) == [3]
    assert len(refusals(caplog)) == 3
    links.close()
