"""Beat runs inference.tasks.sync_nodes every 5 s, so a node that stopped beating is marked down in the
Node table within seconds of its heartbeat expiring, as data the admin can change or pause."""
from django.db import migrations
from django.utils import timezone

TASK_NAME = "sync cluster nodes"
INTERVAL_S = 5


def create_node_sync(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    schedule, _ = IntervalSchedule.objects.get_or_create(every=INTERVAL_S, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "inference.tasks.sync_nodes",
            "interval": schedule,
            "description": "Mark nodes whose heartbeat expired as down.",
        },
    )
    # Beat reloads its schedule when this marker changes (the admin does the same on save).
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_node_sync(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("inference", "0003_builtin_model_catalog"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_node_sync, remove_node_sync)]
