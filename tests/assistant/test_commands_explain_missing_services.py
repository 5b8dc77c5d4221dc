"""A command run before its database is migrated, or without Redis, says so in one line instead of a traceback."""
import socket
import subprocess

from tests.conftest import PROJECT_DIR, child_env, manage_py


def run_manage(args, **env):
    return subprocess.run(manage_py(*args), env=child_env(**env), cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


def test_it_asks_for_migrate_on_an_empty_database(tmp_path):
    result = run_manage(["models", "list"], VAR_DIR=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("the database is not migrated")
    assert "manage.py migrate" in result.stderr


def test_it_names_the_redis_it_cannot_reach(tmp_path):
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    redis_url = f"redis://127.0.0.1:{closed_port()}/0"
    subprocess.run(manage_py("migrate", "--verbosity", "0"), env=child_env(VAR_DIR=tmp_path, DATABASE_URL=database), cwd=PROJECT_DIR, check=True)

    result = run_manage(
        ["models", "pull", "whisper-tiny.en"],
        VAR_DIR=tmp_path, DATABASE_URL=database, REDIS_URL=redis_url, MODEL_CACHE_DIR=tmp_path / "cache",
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"cannot reach Redis at {redis_url}")
