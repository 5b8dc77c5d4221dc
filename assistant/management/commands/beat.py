import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from inference.plumbing.redis import check_redis_reachable


class Command(BaseCommand):
    help = "Run Celery beat with the database scheduler (periodic tasks are edited in the admin)."

    def handle(self, *args, **options):
        check_redis_reachable(settings.REDIS_URL)
        argv = [
            sys.executable, "-m", "celery", "-A", "assistant", "beat",
            "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
            "--pidfile", "",
            "--loglevel", "INFO",
        ]
        os.execv(sys.executable, argv)
