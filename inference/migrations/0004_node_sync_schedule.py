"""Beat runs inference.tasks.sync_nodes every 5 s, so a node that stopped beating is marked down in the
Node table within seconds of its heartbeat expiring, as data the admin can change or pause."""
from django.db import migrations

from inference.plumbing.schedules import schedule_periodic_task, unschedule_periodic_task

TASK_NAME = "sync cluster nodes"
INTERVAL_S = 5


def create_node_sync(apps, schema_editor):
    schedule_periodic_task(
        apps, TASK_NAME, "inference.tasks.sync_nodes", "Mark nodes whose heartbeat expired as down.", every_s=INTERVAL_S
    )


def remove_node_sync(apps, schema_editor):
    unschedule_periodic_task(apps, TASK_NAME)

class Migration(migrations.Migration):
    dependencies = [
        ("inference", "0003_builtin_model_catalog"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_node_sync, remove_node_sync)]
