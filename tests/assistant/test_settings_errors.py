"""A bad environment stops start-up with one line naming the variable, not a traceback."""
import subprocess

import pytest

from inference.plumbing.config import ConfigError, load_config
from tests.conftest import PROJECT_DIR, child_env, manage_py


def run_manage(args, tmp_path, **env):
    return subprocess.run(
        manage_py(*args), env=child_env(VAR_DIR=tmp_path, **env), cwd=PROJECT_DIR,
        capture_output=True, text=True, timeout=120,
    )


def assert_one_line_naming(result, variable):
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {variable}:")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "variable, value",
    [
        ("REDIS_URL", "http://127.0.0.1:6379/0"),
        ("REDIS_URL", "redis://127.0.0.1:notaport/0"),
        ("DATABASE_URL", "mysql-ish://nowhere"),
        ("PORT", "eighty"),
        ("DEBUG", "maybe"),
        ("NODE_NAME", "bad name/with slash"),
        ("MODEL_CACHE_MAX_SIZE", "lots"),
        ("MODEL_CACHE_PEER_PORT", "99999"),
        ("INGEST_BACKFILL_DAYS", "a month"),
        ("INGEST_DOWNLOADS_PER_NODE", "0"),
        ("INGEST_USE_SUBTITLES", "perhaps"),
        ("KOTATSU_ALLOW_PRIVATE_URLS", "sure"),
        ("TRUSTED_PROXIES", "proxy.lan"),
    ],
)
def test_a_malformed_value_stops_manage_py_with_one_line(tmp_path, variable, value):
    assert_one_line_naming(run_manage(["check"], tmp_path, **{variable: value}), variable)


def test_an_unreachable_redis_stops_the_web_server_with_one_line(tmp_path):
    result = run_manage(["web"], tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    assert_one_line_naming(result, "REDIS_URL")
    assert "cannot reach" in result.stderr


def test_an_unreachable_redis_stops_the_node_with_one_line(tmp_path):
    assert_one_line_naming(run_manage(["node"], tmp_path, REDIS_URL="redis://127.0.0.1:1/0"), "REDIS_URL")


def test_a_var_dir_that_cannot_be_created_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="^VAR_DIR: cannot create"):
        load_config({"VAR_DIR": str(blocker / "var")})


def test_defaults_put_all_runtime_state_under_var_dir(tmp_path):
    config = load_config({"VAR_DIR": str(tmp_path)})
    assert config.database["NAME"] == str(tmp_path / "kotatsu.sqlite3")
    assert config.redis_is_embedded and config.redis_url.startswith("redis://127.0.0.1:")
    assert config.port == 8000 and config.debug is False
    assert (tmp_path / "secret_key").exists()


def test_the_generated_secret_key_is_kept_across_restarts(tmp_path):
    first = load_config({"VAR_DIR": str(tmp_path)})
    second = load_config({"VAR_DIR": str(tmp_path)})
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_given_values_win_over_defaults(tmp_path):
    config = load_config(
        {
            "VAR_DIR": str(tmp_path),
            "SECRET_KEY": "s" * 50,
            "DEBUG": "true",
            "ALLOWED_HOSTS": "kotatsu.lan, 10.0.0.5",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
            "REDIS_URL": "redis://redis:6379/1",
            "MODEL_CACHE_DIR": str(tmp_path / "models"),
            "NODE_NAME": "pi-3",
            "CLUSTER_TOKEN": "t0ken",
            "PORT": "9000",
            "MODEL_CACHE_MAX_SIZE": "40G",
            "MODEL_CACHE_PEER_HOST": "10.0.0.5",
            "MODEL_CACHE_PEER_PORT": "7070",
            "INGEST_MAX_ATTEMPTS": "7",
            "INGEST_WHISPER_MODEL": "whisper-tiny.en",
            "INGEST_USE_SUBTITLES": "yes",
        }
    )
    assert config.secret_key == "s" * 50 and config.debug is True
    assert config.allowed_hosts == ["kotatsu.lan", "10.0.0.5"]
    assert config.database["ENGINE"] == "django.db.backends.postgresql" and config.database["NAME"] == "test"
    assert config.redis_url == "redis://redis:6379/1" and not config.redis_is_embedded
    assert config.model_cache_dir == tmp_path / "models"
    assert (config.node_name, config.cluster_token, config.port) == ("pi-3", "t0ken", 9000)
    assert config.model_cache_max_bytes == 40 * 1024**3
    assert (config.model_cache_peer_host, config.model_cache_peer_port) == ("10.0.0.5", 7070)
    assert config.ingest.max_attempts == 7 and config.ingest.whisper_model == "whisper-tiny.en"
    assert config.ingest.use_subtitles is True


def test_settings_take_every_value_from_the_config(settings):
    from assistant.settings import CONFIG

    assert settings.INGEST_BACKFILL_DAYS == CONFIG.ingest.backfill_days
    assert settings.MODEL_CACHE_MAX_BYTES == CONFIG.model_cache_max_bytes
    assert "os.environ" not in (PROJECT_DIR / "assistant" / "settings.py").read_text()
