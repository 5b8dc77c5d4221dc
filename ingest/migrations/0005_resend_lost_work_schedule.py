"""Beat sends ingest.tasks.resend_lost_work every 30 s, so no job or summary waits for a task message that a
restarted Redis lost, as data the admin can change or pause."""
from django.db import migrations

from inference.plumbing.schedules import schedule_periodic_task, unschedule_periodic_task

TASK_NAME = "resend lost work"
INTERVAL_S = 30  # ingest.tasks.RESEND_SWEEP_INTERVAL_S when this was written


def create_resend_sweep(apps, schema_editor):
    schedule_periodic_task(
        apps,
        TASK_NAME,
        "ingest.tasks.resend_lost_work",
        "Send again the jobs and summaries whose task message was lost (Redis restarted, or waited too long).",
        every_s=INTERVAL_S,
    )


def remove_resend_sweep(apps, schema_editor):
    unschedule_periodic_task(apps, TASK_NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0004_video_summary"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_resend_sweep, remove_resend_sweep)]
