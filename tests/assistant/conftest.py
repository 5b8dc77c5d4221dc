"""Fixtures of the assistant tests: the model catalog, a small knowledge base, and a live web server."""
import importlib
import subprocess
import time

import httpx
import pytest
from django.apps import apps
from django.contrib.auth import get_user_model

from assistant.services import do_create_api_key
from tests.assistant.knowledge import build_knowledge_base
from tests.conftest import PROJECT_DIR, child_env, manage_py, stop_process
from tests.embedded_services import free_port

BUILT_IN_CATALOG = importlib.import_module("inference.migrations.0003_builtin_model_catalog")


def ensure_model_catalog():
    """The built-in catalog rows, which a transactional test before this one may have flushed away."""
    BUILT_IN_CATALOG.add_built_in_models(apps, None)


@pytest.fixture
def knowledge(db):
    ensure_model_catalog()
    return build_knowledge_base()


def start_web_server(log_path, **env):
    """`manage.py web` on a free port against the test database; returns (process, base URL)."""
    port = free_port()
    log = open(log_path, "wb")
    process = subprocess.Popen(
        manage_py("web", "--host", "127.0.0.1"), env=child_env(PORT=port, **env),
        stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_DIR,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web server exited with code {process.returncode}; see {log_path}")
        try:
            httpx.get(f"{base_url}/login/", timeout=1)
            return process, base_url
        except httpx.TransportError:
            time.sleep(0.2)
    stop_process(process)
    raise RuntimeError(f"the web server did not answer within 60 s; see {log_path}")


@pytest.fixture(scope="module")
def served_knowledge(django_db_setup, django_db_blocker, tmp_path_factory):
    """A web server over a committed knowledge base and an employee's API key, shared by a module's tests
    (starting the server and loading the models once); the database is emptied afterwards."""
    from django.core.management import call_command

    with django_db_blocker.unblock():
        ensure_model_catalog()
        knowledge = build_knowledge_base()
        employee = get_user_model().objects.create_user("erin", password="a long pass phrase 42")
        _, raw_key = do_create_api_key(employee, "tests")
    process, base_url = start_web_server(tmp_path_factory.mktemp("web") / "web.log")
    try:
        yield {"base_url": base_url, "api_key": raw_key, "employee": employee, **knowledge}
    finally:
        stop_process(process)
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)
