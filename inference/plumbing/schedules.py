"""Periodic tasks kept as data (django-celery-beat), created by data migrations so the admin can change them.

Takes the migration's historical `apps`, so migrations can call it with the models as they were then.
"""
from django.utils import timezone


def schedule_periodic_task(apps, name, task, description, *, every_s=None, crontab=None):
    """Create the named task once, on an interval of every_s seconds or on a crontab dict; keep admin edits."""
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if crontab is not None:
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        schedule, _ = CrontabSchedule.objects.get_or_create(**crontab)
        timing = {"crontab": schedule}
    else:
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        schedule, _ = IntervalSchedule.objects.get_or_create(every=every_s, period="seconds")
        timing = {"interval": schedule}
    PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "description": description, **timing})
    mark_schedule_changed(apps)


def unschedule_periodic_task(apps, name):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=name).delete()
    mark_schedule_changed(apps)


def mark_schedule_changed(apps):
    # Beat reloads its schedule when this marker changes (the admin does the same on save).
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})
