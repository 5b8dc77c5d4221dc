"""Fixtures shared by every test package: child processes that see the same test database and Redis."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Transactions of this process begin DEFERRED. pytest-django wraps each test in one; begun IMMEDIATE (as the
    settings make every process's transactions on SQLite) it would hold the write lock for the whole test and
    starve the web servers and workers the test starts, which keep IMMEDIATE."""
    from django.db import connection

    connection.settings_dict["OPTIONS"].pop("transaction_mode", None)


def test_database_url():
    """A DATABASE_URL for child processes that points at the database pytest-django created."""
    from django.db import connection

    database = connection.settings_dict
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    user = database.get("USER") or "postgres"
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{database['NAME']}"


def child_env(**overrides):
    env = {**os.environ, "DATABASE_URL": test_database_url(), "PYTHONUNBUFFERED": "1"}
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def manage_py(*args):
    return [sys.executable, str(PROJECT_DIR / "manage.py"), *args]


def wait_for_worker(node_name, process, timeout_s=180):  # a worker starts in over a minute on a loaded 2-core machine
    from assistant.celery import app

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker {node_name} exited with code {process.returncode}")
        replies = app.control.ping(timeout=0.5)
        if any(name.startswith(f"{node_name}@") for reply in replies for name in reply):
            return
    raise RuntimeError(f"worker {node_name} did not answer a ping within {timeout_s} s")


def stop_process(process, timeout_s=20):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """Start a real Celery worker (`manage.py node`) on the test database; stopped after the test."""
    started = []

    def start(node_name="test-node", concurrency=1, **env):
        log = open(tmp_path / f"{node_name}.log", "wb")
        process = subprocess.Popen(
            manage_py("node", "--name", node_name, "--concurrency", str(concurrency)),
            env=child_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_DIR,
        )
        started.append(process)
        wait_for_worker(node_name, process)
        return process

    yield start
    for process in started:
        stop_process(process)
