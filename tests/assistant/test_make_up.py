"""`make up` on embedded defaults answers /health with 200 and leaves no process behind after SIGTERM."""
import json
import os
import signal
import subprocess
import time
import urllib.request

import psutil
import pytest

from tests.conftest import PROJECT_DIR, stop_process
from tests.embedded_services import free_port

STARTUP_TIMEOUT_S = 600


@pytest.fixture
def fresh_env(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        VAR_DIR=str(tmp_path / "var"),
        PORT=str(free_port()),
        KOTATSU_EMBEDDED_REDIS_PORT=str(free_port()),
        NODE_NAME="make-up-node",
    )
    env.pop("DJANGO_SUPERUSER_PASSWORD", None)
    return env


def read_until(process, marker, timeout_s):
    lines = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} within {timeout_s} s; output:\n{''.join(lines)}")


def test_make_up_serves_health_and_stops_everything_on_sigterm(fresh_env):
    process = subprocess.Popen(
        ["make", "--no-print-directory", "up"], cwd=PROJECT_DIR, env=fresh_env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        output = read_until(process, "Kotatsu is up", STARTUP_TIMEOUT_S)
        assert any("Created the admin account 'admin' with password" in line for line in output)
        url = f"http://127.0.0.1:{fresh_env['PORT']}/health"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert json.load(response) == {"status": "ok"}  # "ok" needs a worker seen
        started = psutil.Process(process.pid).children(recursive=True)
        assert len(started) >= 4  # manage.py up, redis, web, node (+ its pool), beat
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) is not None
        gone, alive = psutil.wait_procs(started, timeout=30)
        assert alive == [], [proc.info for proc in alive]
    finally:
        stop_process(process)


def test_a_second_make_up_skips_the_install_it_already_did(fresh_env):
    result = subprocess.run(["make", "--question", ".venv/.installed"], cwd=PROJECT_DIR, env=fresh_env)
    assert result.returncode == 0, "make would install again"
