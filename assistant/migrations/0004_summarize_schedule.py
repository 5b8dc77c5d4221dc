"""Summaries of newly indexed videos every minute, as data so that the admin can change or pause it."""
from django.db import migrations

from inference.plumbing.schedules import schedule_periodic_task, unschedule_periodic_task

TASK_NAME = "summarize new videos"


def create_schedule(apps, schema_editor):
    schedule_periodic_task(
        apps,
        TASK_NAME,
        "assistant.tasks.summarize_new_videos",
        "Summarize the videos indexed since the last run, for the dashboards' 'worth watching'.",
        every_s=60,
    )


def remove_schedule(apps, schema_editor):
    unschedule_periodic_task(apps, TASK_NAME)

class Migration(migrations.Migration):
    dependencies = [
        ("assistant", "0003_video_summary"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
