"""The nightly "sync all sources" run, as data so that the admin can change its time or pause it."""
from django.conf import settings
from django.db import migrations

from inference.plumbing.schedules import schedule_periodic_task, unschedule_periodic_task

TASK_NAME = "sync all sources"


def create_nightly_sync(apps, schema_editor):
    schedule_periodic_task(
        apps,
        TASK_NAME,
        "ingest.tasks.sync_all_sources",
        "Ingest what every subscribed source published since its last sync.",
        crontab={
            "minute": "0", "hour": "2", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*",
            "timezone": settings.TIME_ZONE,
        },
    )


def remove_nightly_sync(apps, schema_editor):
    unschedule_periodic_task(apps, TASK_NAME)

class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_nightly_sync, remove_nightly_sync)]
