"""Celery's two kinds of queue: "any" (served by every node's worker) and "node.<NAME>" (this node only)."""

ANY_NODE_QUEUE = "any"


def node_queue(node_name):
    """The queue only the named node's worker consumes: for work that needs this node's disk or memory."""
    return f"node.{node_name}"
