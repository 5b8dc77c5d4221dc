"""There is no Docker engine here: the compose file is checked by parsing it."""
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from tests.conftest import PROJECT_DIR


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())


def test_it_has_the_services_of_a_cluster(compose):
    assert {"redis", "postgres", "web", "beat", "node"} <= set(compose["services"])


def test_every_project_service_runs_a_management_command_that_exists(compose):
    commands = get_commands()
    project_services = {name: service for name, service in compose["services"].items() if "build" in service}
    assert {"web", "beat", "node"} <= set(project_services)
    for name, service in project_services.items():
        program, script, command = service["command"][:3]
        assert (program, script) == ("python", "manage.py"), name
        assert command in commands, f"service {name} runs unknown command {command!r}"
        assert (PROJECT_DIR / service["build"] / "Dockerfile").exists()


def test_the_node_service_scales_and_shares_the_model_cache(compose):
    node = compose["services"]["node"]
    assert "container_name" not in node and "ports" not in node  # both would stop --scale node=3
    assert "model-cache:/models" in node["volumes"]
    assert node["environment"]["MODEL_CACHE_DIR"] == "/models"
    assert "model-cache" in compose["volumes"]


def test_every_node_joins_the_same_redis_and_database(compose):
    for name in ("web", "beat", "node"):
        environment = compose["services"][name]["environment"]
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert "CLUSTER_TOKEN" in environment
