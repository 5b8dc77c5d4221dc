"""Summaries of newly indexed videos every minute, as data so that the admin can change or pause it."""
from django.db import migrations
from django.utils import timezone

TASK_NAME = "summarize new videos"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "assistant.tasks.summarize_new_videos",
            "interval": every_minute,
            "description": "Summarize the videos indexed since the last run, for the dashboards' 'worth watching'.",
        },
    )
    # Beat reloads its schedule when this marker changes (the admin does the same on save).
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("assistant", "0003_video_summary"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
