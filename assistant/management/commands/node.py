import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from assistant.celery import ANY_NODE_QUEUE, node_queue
from assistant.config import check_redis_reachable, parse_node_name


class Command(BaseCommand):
    help = "Run this node's Celery worker, consuming the shared queue and this node's own queue."

    def add_arguments(self, parser):
        parser.add_argument("--name", help="node name (default: NODE_NAME)")
        parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)

    def handle(self, *args, name=None, concurrency=1, **options):
        node_name = parse_node_name(name) if name else settings.NODE_NAME
        check_redis_reachable(settings.REDIS_URL)
        os.environ["NODE_NAME"] = node_name
        argv = [
            sys.executable, "-m", "celery", "-A", "assistant", "worker",
            "--hostname", f"{node_name}@%h",
            "--queues", f"{ANY_NODE_QUEUE},{node_queue(node_name)}",
            "--concurrency", str(concurrency),
            "--loglevel", "INFO",
        ]
        # exec, so that signals reach Celery directly and its warm shutdown runs.
        os.execv(sys.executable, argv)
