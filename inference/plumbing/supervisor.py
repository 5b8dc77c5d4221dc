"""Run a set of services in the foreground and stop every one of them on Ctrl-C / SIGTERM or when one dies.

A service is a child process (Child) or a thread of this process (ThreadService). Each child gets its own
process group so that its own children (Celery's pool, uvicorn) are stopped too, and dies with its parent
even when the parent is killed with -9. A child started with a way to start it again (`restart`) is started
again when it dies, after a delay that grows while it keeps dying, instead of stopping the others.
"""
import logging
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

GRACE_PERIOD_S = 15
PR_SET_PDEATHSIG = 1
FIRST_RESTART_DELAY_S = 1.0
LONGEST_RESTART_DELAY_S = 60.0
# A child that ran this long before dying is restarted after the first delay again.
STABLE_RUN_S = 60.0

log = logging.getLogger(__name__)


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: object = None
    restart: object = None  # () -> a new Popen of the same service, or None: its death stops the others
    started_at: float = 0.0
    restart_delay_s: float = FIRST_RESTART_DELAY_S
    restart_at: float = None  # time.monotonic() when the dead child is due to start again

    def is_running(self):
        return self.process.poll() is None

    def is_restarting(self):
        """Dead but restartable: schedule its restart on the first look, start it when due; True meanwhile."""
        if self.restart is None:
            return False
        now = time.monotonic()
        if self.restart_at is None:
            if now - self.started_at >= STABLE_RUN_S:
                self.restart_delay_s = FIRST_RESTART_DELAY_S
            self.restart_at = now + self.restart_delay_s
            log.warning("%s %s; starting it again in %.0f s", self.name, self.how_it_ended(), self.restart_delay_s)
            self.restart_delay_s = min(LONGEST_RESTART_DELAY_S, self.restart_delay_s * 2)
        elif now >= self.restart_at:
            self.process, self.started_at, self.restart_at = self.restart(), now, None
        return True

    def how_it_ended(self):
        return f"exited with code {self.process.returncode}"

    def request_stop(self):
        signal_group(self.process, signal.SIGTERM)

    def wait_stopped(self, timeout_s):
        try:
            self.process.wait(timeout=max(0.1, timeout_s))
        except subprocess.TimeoutExpired:
            pass
        # Whatever the child left in its group (pool processes) goes too.
        signal_group(self.process, signal.SIGKILL)
        self.process.wait()


@dataclass
class ThreadService:
    """A service running in `thread`; `stop()` asks it to end (the supervisor's stop event ends the others)."""

    name: str
    thread: threading.Thread
    stop: object = None

    def is_running(self):
        return self.thread.is_alive()

    def how_it_ended(self):
        return "failed (traceback above)"

    def request_stop(self):
        if self.stop is not None:
            self.stop()

    def wait_stopped(self, timeout_s):
        self.thread.join(timeout=max(0.1, timeout_s))


class Supervisor:
    def __init__(self):
        self.children = []
        # Set on Ctrl-C / SIGTERM; thread services watch it too.
        self.stopping = threading.Event()

    @property
    def stop_requested(self):
        return self.stopping.is_set()

    def start(self, name, argv, log_path=None, env=None, restart=False):
        """Start a child process; with restart, start it again whenever it dies until the others stop."""
        child = spawn(name, argv, log_path, env)
        if restart:
            child.restart = lambda: spawn(name, argv, log_path, env).process
        self.adopt(child)

    def adopt(self, service):
        self.children.append(service)

    def install_signal_handlers(self):
        def request_stop(signum, frame):
            self.stopping.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

    def first_exited(self):
        """The first service that ended for good (a restartable child is started again instead)."""
        for child in self.children:
            if not child.is_running() and not (isinstance(child, Child) and child.is_restarting()):
                return child
        return None

    def wait(self, poll_interval_s=0.5):
        """Block until a stop is requested or a service ends; return the ended service, or None."""
        while not self.stopping.wait(poll_interval_s):
            dead = self.first_exited()
            if dead:
                return dead
        return None

    def stop_all(self):
        self.stopping.set()
        # Reverse start order: the web server and workers go before the Redis they talk to.
        for child in reversed(self.children):
            child.request_stop()
        deadline = time.monotonic() + GRACE_PERIOD_S
        for child in reversed(self.children):
            child.wait_stopped(deadline - time.monotonic())


def spawn(name, argv, log_path=None, env=None):
    """Start a child process; its output goes to log_path, or to ours when there is none."""
    log = open(log_path, "ab") if log_path else None
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT if log else None, env=env,
            start_new_session=True, preexec_fn=die_with_parent,
        )
    finally:
        if log:
            log.close()
    return Child(name, process, log_path, started_at=time.monotonic())


def signal_group(process, signum):
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def die_with_parent():
    """Have Linux kill a child when its starter dies, even by SIGKILL, so that no orphan keeps working
    (a worker consuming tasks for a node that is gone, a server holding its port)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
