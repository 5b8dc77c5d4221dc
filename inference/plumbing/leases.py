"""Leases on database rows for the work of one process: a pipeline step of a video, a video's summary.

A lease is two fields of the row: its holder, "<node>:<pid>:<process start time>" (empty while nobody holds
it), and when the holder last showed it was alive. It is taken with a conditional UPDATE, so of two
deliveries of one task message only one does the work; a lease whose holder died is taken over, so no work
is lost with a killed worker. Knows no app's models: callers pass the queryset selecting their row.
"""
from datetime import timedelta

import psutil
from django.conf import settings
from django.utils import timezone

# A holder on another node is presumed dead after this long without showing it is alive (a pipeline step
# writes its progress at least every few seconds).
HOLDER_SILENCE_LIMIT = timedelta(minutes=15)


def current_holder():
    """This process's name in leases: the start time tells a reused pid from the process that held it."""
    process = psutil.Process()
    return f"{settings.NODE_NAME}:{process.pid}:{process.create_time():.0f}"


def holder_is_dead(holder, alive_at):
    """A holder is dead when it fell silent, or, on this node, at once when its process is gone. A process that
    lives on but lost the work (its database connection broke mid-step, so the step ended without releasing
    the lease) falls silent too, so no lease stays held by it."""
    node, _, rest = holder.partition(":")
    pid, _, started = rest.partition(":")
    if node == settings.NODE_NAME:
        try:
            if f"{psutil.Process(int(pid)).create_time():.0f}" != started:
                return True
        except (psutil.NoSuchProcess, ValueError):
            return True
    return alive_at is None or alive_at < timezone.now() - HOLDER_SILENCE_LIMIT


def claim_for_this_process(row, holder_field, alive_at_field):
    """Make the one row `row` (a queryset) selects this process's with a conditional UPDATE, when nobody holds
    it or its holder died; return the holder string written, or None. A redelivered task message thus runs once."""
    holder = current_holder()
    claim = {holder_field: holder, alive_at_field: timezone.now()}
    if row.filter(**{holder_field: ""}).update(**claim):
        return holder
    current = row.exclude(**{holder_field: ""}).values_list(holder_field, alive_at_field).first()
    if current is not None and holder_is_dead(*current) and row.filter(**{holder_field: current[0]}).update(**claim):
        return holder
    return None
