"""`manage.py up` and `node` supervise their processes: a restartable child that truly exited is started again
(after a delay that doubles), one that keeps running is left alone, and a child without a restart ends the
supervision."""
import sys
import time

import pytest

from inference.plumbing.supervisor import Supervisor

STAYS = [sys.executable, "-c", "import time; time.sleep(120)"]
DIES = [sys.executable, "-c", "import sys; sys.exit(3)"]


@pytest.fixture
def supervisor():
    supervisor = Supervisor()
    yield supervisor
    supervisor.stop_all()


def watch(supervisor, seconds):
    """Look at the children as `Supervisor.wait` does, for `seconds`; the first that ended for good, or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ended = supervisor.first_exited()
        if ended:
            return ended
        time.sleep(0.1)
    return None


def test_a_child_that_died_is_started_again_and_a_running_one_is_left_alone(supervisor):
    supervisor.start("steady", STAYS, restart=True)
    supervisor.start("crashing", DIES, restart=True)
    steady, crashing = supervisor.children
    steady_pid, first_crash_pid = steady.process.pid, crashing.process.pid

    assert watch(supervisor, 4.0) is None, "a restartable child never ends the supervision"

    assert steady.process.pid == steady_pid and steady.is_running()
    assert crashing.process.pid != first_crash_pid, "the crashed child was started again"
    assert crashing.restart_delay_s >= 4.0, "each quick death doubles the delay before the next start"


def test_a_child_without_a_restart_ends_the_supervision(supervisor):
    supervisor.start("steady", STAYS, restart=True)
    supervisor.start("one-shot", DIES)

    ended = watch(supervisor, 10.0)

    assert ended is not None and ended.name == "one-shot" and ended.process.returncode == 3
    assert supervisor.children[0].is_running()
