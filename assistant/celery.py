"""The Celery app. Two kinds of queue: "any" (served by every node's worker) and "node.<NAME>" (this node)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")

app = Celery("assistant")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

ANY_NODE_QUEUE = "any"


def node_queue(node_name):
    """The queue only the named node's worker consumes: for work that needs this node's disk or memory."""
    return f"node.{node_name}"
