"""Run a set of child processes in the foreground and stop every one of them on Ctrl-C / SIGTERM.

Each child gets its own process group so that its own children (Celery's pool, uvicorn) are stopped too.
"""
import os
import signal
import subprocess
import time
from dataclasses import dataclass

GRACE_PERIOD_S = 15


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: object = None


class Supervisor:
    def __init__(self):
        self.children = []
        self.stop_requested = False

    def start(self, name, argv, log_path, env=None):
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.adopt(Child(name, process, log_path))

    def adopt(self, child):
        self.children.append(child)

    def install_signal_handlers(self):
        def request_stop(signum, frame):
            self.stop_requested = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

    def first_exited(self):
        return next((child for child in self.children if child.process.poll() is not None), None)

    def wait(self, poll_interval_s=0.5):
        """Block until a stop is requested or a child dies; return the dead child, or None."""
        while not self.stop_requested:
            dead = self.first_exited()
            if dead:
                return dead
            time.sleep(poll_interval_s)
        return None

    def stop_all(self):
        # Reverse start order: the web server and workers go before the Redis they talk to.
        for child in reversed(self.children):
            signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_PERIOD_S
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # Whatever the child left in its group (pool processes) goes too.
            signal_group(child.process, signal.SIGKILL)
            child.process.wait()


def signal_group(process, signum):
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
