import logging

from django.conf import settings

from inference.cluster import pipeline_protocol as protocol
from inference.cluster.shard_server import ShardServer
from tests.inference.cluster_helpers import cluster_redis_db  # noqa: F401 (fixture)

PONGS = "test:pongs"


def ping(number):
    return {"kind": "ping", "run": "run-1", "epoch": 1, "reply_to": PONGS, "ping": number}


def answered_pings(client):
    return [protocol.decode(settings.CLUSTER_TOKEN, message)[0]["ping"] for message in client.lrange(PONGS, 0, -1)]


def test_a_shard_server_drops_messages_not_signed_with_the_cluster_token(cluster_redis_db, caplog):
    server = ShardServer(cluster_redis_db, settings.CLUSTER_TOKEN, "alpha")
    inbox = protocol.inbox_key("alpha")
    signed = protocol.encode(settings.CLUSTER_TOKEN, ping(3))
    tampered = signed.replace(b'"ping":3', b'"ping":9')  # a signed message, edited afterwards
    cluster_redis_db.rpush(inbox, protocol.encode("not-the-cluster-token", ping(1)), tampered, b"\x00" * 8, signed)

    with caplog.at_level(logging.WARNING, logger="inference.cluster.shard_server"):
        server.serve_once(timeout_s=1)

    # The server works through its inbox in order: answering the last ping proves it saw the forged ones.
    assert answered_pings(cluster_redis_db) == [3]
    refusals = [record.getMessage() for record in caplog.records if "not signed with the cluster token" in record.getMessage()]
    assert len(refusals) == 3
