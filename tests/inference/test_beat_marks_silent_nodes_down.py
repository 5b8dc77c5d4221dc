import pytest
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from inference.heartbeat import publish_heartbeat
from inference.models import Node
from inference.tasks import sync_nodes
from tests.inference.cluster_helpers import cluster_redis_db, node_info  # noqa: F401 (fixture)

# serialized_rollback: the beat schedule is migration data, which a transactional test would flush.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_beat_runs_the_node_sync_every_five_seconds():
    task = PeriodicTask.objects.get(task="inference.tasks.sync_nodes")

    assert (task.interval.every, task.interval.period, task.enabled) == (5, "seconds", True)


def test_the_sync_task_marks_a_node_down_once_its_heartbeat_expired(cluster_redis_db):
    info = node_info("alpha")
    publish_heartbeat(cluster_redis_db, info, settings.CLUSTER_TOKEN)
    sync_nodes.apply()
    assert Node.objects.get(name="alpha").status == Node.UP

    cluster_redis_db.delete(info.key())  # what the 10 s TTL does when the node stops beating
    sync_nodes.apply()

    assert Node.objects.get(name="alpha").status == Node.DOWN
