"""A per-node limit on concurrent downloads, shared by every worker process of the node through Redis.

Each slot is a redis-py Lock that expires unless extended, so the slot of a killed worker frees itself.
"""
import contextlib

from redis.exceptions import LockError

SLOT_TTL_S = 300


class NoFreeSlot(Exception):
    """Every download slot of this node is taken; try again later."""


@contextlib.contextmanager
def download_slot(client, node_name, slots):
    """Hold one of the node's `slots` download slots; yields a function that keeps the slot alive."""
    for number in range(slots):
        lock = client.lock(f"kotatsu:download-slot:{node_name}:{number}", timeout=SLOT_TTL_S, blocking=False)
        if lock.acquire():
            break
    else:
        raise NoFreeSlot(f"all {slots} download slots of {node_name} are busy")
    try:
        yield lambda: lock.reacquire()
    finally:
        # An expired slot (a download that outlived the TTL without progress) may already be someone else's.
        with contextlib.suppress(LockError):
            lock.release()
