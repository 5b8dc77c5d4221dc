import importlib

import pytest
from django.apps import apps
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from inference.cluster.heartbeat import publish_heartbeat
from inference.models import Node
from inference.tasks import sync_nodes
from tests.inference.cluster_helpers import cluster_redis_db, node_info  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

NODE_SYNC_SCHEDULE = importlib.import_module("inference.migrations.0004_node_sync_schedule")


def test_beat_runs_the_node_sync_every_five_seconds():
    # The schedule is migration data, which a transactional test before this one may have flushed away.
    NODE_SYNC_SCHEDULE.create_node_sync(apps, None)

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
