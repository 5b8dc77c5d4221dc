"""The nightly "sync all sources" run, as data so that the admin can change its time or pause it."""
from django.conf import settings
from django.db import migrations
from django.utils import timezone

TASK_NAME = "sync all sources"


def create_nightly_sync(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="2", day_of_week="*", day_of_month="*", month_of_year="*", timezone=settings.TIME_ZONE
    )
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "ingest.tasks.sync_all_sources",
            "crontab": schedule,
            "description": "Ingest what every subscribed source published since its last sync.",
        },
    )
    # Beat reloads its schedule when this marker changes (the admin does the same on save).
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_nightly_sync(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_nightly_sync, remove_nightly_sync)]
