"""Runtime configuration read from the environment.

Django-free so that manage.py, the launcher and tests can validate the environment before anything
starts. Every error names the variable at fault in one line (ConfigError), never a traceback.
"""
import os
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

EMBEDDED_REDIS_PORT = 6390
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
NODE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
SUPPORTED_DATABASE_ENGINES = {"django.db.backends.sqlite3", "django.db.backends.postgresql"}


class ConfigError(Exception):
    """A setting from the environment that Kotatsu cannot run with."""


@dataclass(frozen=True)
class Config:
    secret_key: str
    debug: bool
    allowed_hosts: list
    var_dir: Path
    database: dict
    redis_url: str
    redis_is_embedded: bool
    model_cache_dir: Path
    node_name: str
    cluster_token: str
    port: int


def load_config(env=None):
    env = os.environ if env is None else env
    var_dir = parse_var_dir(env.get("VAR_DIR", "var"))
    node_name = parse_node_name(env.get("NODE_NAME") or socket.gethostname())
    redis_url = env.get("REDIS_URL", "").strip()
    return Config(
        secret_key=env.get("SECRET_KEY") or read_or_create_secret(var_dir / "secret_key"),
        debug=parse_bool("DEBUG", env.get("DEBUG", "0")),
        allowed_hosts=parse_hosts(env.get("ALLOWED_HOSTS"), node_name),
        var_dir=var_dir,
        database=parse_database_url(env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'kotatsu.sqlite3'}"),
        redis_url=parse_redis_url(redis_url) if redis_url else embedded_redis_url(env),
        redis_is_embedded=not redis_url,
        model_cache_dir=Path(env.get("MODEL_CACHE_DIR") or "~/.cache/kotatsu/models").expanduser().resolve(),
        node_name=node_name,
        cluster_token=env.get("CLUSTER_TOKEN") or read_or_create_secret(var_dir / "cluster_token"),
        port=parse_port("PORT", env.get("PORT", "8000")),
    )


def parse_var_dir(value):
    path = Path(value).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"VAR_DIR: cannot create {path}: {error.strerror}") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"VAR_DIR: {path} is not writable")
    return path


def parse_bool(name, value):
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}: expected 1/0, true/false, yes/no or on/off, got {value!r}")


def parse_port(name, value):
    if not value.strip().isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"{name}: expected a TCP port between 1 and 65535, got {value!r}")
    return int(value)


def parse_count(name, value):
    if not value.strip().isdigit():
        raise ConfigError(f"{name}: expected a whole number, got {value!r}")
    return int(value)


def parse_node_name(value):
    if not NODE_NAME_PATTERN.match(value):
        raise ConfigError(f"NODE_NAME: use letters, digits, '.', '_' or '-' (at most 63), got {value!r}")
    return value


def parse_hosts(value, node_name):
    if value is None:
        return ["localhost", "127.0.0.1", "[::1]", node_name]
    hosts = [host.strip() for host in value.split(",") if host.strip()]
    if not hosts:
        raise ConfigError("ALLOWED_HOSTS: give at least one host name, comma separated")
    return hosts


def parse_database_url(value):
    try:
        database = dj_database_url.parse(value, conn_max_age=60)
    except Exception as error:  # dj-database-url raises several types for malformed URLs
        raise ConfigError(f"DATABASE_URL: malformed URL {value!r} ({error})") from None
    if database.get("ENGINE") not in SUPPORTED_DATABASE_ENGINES:
        raise ConfigError(f"DATABASE_URL: use sqlite:///PATH or postgres://USER@HOST:PORT/NAME, got {value!r}")
    if not database.get("NAME"):
        raise ConfigError(f"DATABASE_URL: no database name in {value!r}")
    return database


def parse_redis_url(value):
    parts = urlsplit(value)
    problem = None
    if parts.scheme not in {"redis", "rediss"}:
        problem = "the scheme must be redis:// or rediss://"
    elif not parts.hostname:
        problem = "no host"
    else:
        try:
            parts.port
        except ValueError:
            problem = "bad port"
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            problem = "the path must be a database number such as /0"
    if problem:
        raise ConfigError(f"REDIS_URL: malformed URL {value!r}: {problem}")
    return value


def embedded_redis_url(env):
    port = parse_port("KOTATSU_EMBEDDED_REDIS_PORT", env.get("KOTATSU_EMBEDDED_REDIS_PORT", str(EMBEDDED_REDIS_PORT)))
    return f"redis://127.0.0.1:{port}/0"


def read_or_create_secret(path):
    """Generate a secret once and keep it under VAR_DIR so restarts keep sessions and peers.

    The link() makes creation atomic: when two processes start at once, both read the winner's secret.
    """
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text().strip()


def check_redis_reachable(redis_url, timeout_s=3.0):
    """Raise ConfigError naming REDIS_URL when the server does not answer PING."""
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s).ping()
    except redis.RedisError as error:
        raise ConfigError(f"REDIS_URL: cannot reach {redact_url(redis_url)} ({error})") from None


def redact_url(url):
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
