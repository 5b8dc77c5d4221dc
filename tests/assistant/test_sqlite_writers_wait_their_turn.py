"""Several local processes write one SQLite file: a read-then-write transaction (update_or_create) that meets
another process's open write waits for it and then succeeds, instead of failing with "database is locked"."""
import subprocess
import sys

import pytest
from django.db import connection

from inference.models import Node
from tests.conftest import PROJECT_DIR, child_env

pytestmark = pytest.mark.django_db(transaction=True)

# Each child reads a line from stdin before each step, so the test decides the interleaving.
SETUP = "import django, sys; django.setup(); from django.db import transaction; from inference.models import Node; "
HOLDS_THE_WRITE_LOCK = SETUP + """
with transaction.atomic():
    Node.objects.update_or_create(name="holder", defaults={"host": "10.0.0.1"})
    print("writing", flush=True)
    sys.stdin.readline()
print("committed", flush=True)
"""
READS_THEN_WRITES = SETUP + """
print("ready", flush=True)
sys.stdin.readline()
Node.objects.update_or_create(name="holder", defaults={"host": "10.0.0.2"})
print("updated", flush=True)
"""


def start(script):
    return subprocess.Popen(
        [sys.executable, "-c", script], env=child_env(DJANGO_SETTINGS_MODULE="assistant.settings"), cwd=PROJECT_DIR,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def tell(process):
    process.stdin.write("\n")
    process.stdin.flush()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="about SQLite's locking")
def test_a_second_writer_waits_for_the_first_and_then_succeeds():
    Node.objects.create(name="holder", host="10.0.0.0")
    holder, follower = start(HOLDS_THE_WRITE_LOCK), start(READS_THEN_WRITES)
    try:
        assert follower.stdout.readline().strip() == "ready"
        assert holder.stdout.readline().strip() == "writing"
        tell(follower)  # its transaction begins while the holder's write is open...
        try:
            follower.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass  # ...and waits for it,
        tell(holder)  # until the holder commits.
        holder_out, holder_err = holder.communicate(timeout=60)
        follower_out, follower_err = follower.communicate(timeout=60)
    finally:
        for process in (holder, follower):
            process.kill()

    assert holder.returncode == 0, holder_err
    assert follower.returncode == 0, follower_err
    assert follower_out.split() == ["updated"]
    assert Node.objects.get(name="holder").host == "10.0.0.2"
