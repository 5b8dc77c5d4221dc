"""Runtime configuration read from the environment: the one place an environment variable is parsed.

Django-free so that manage.py, the launcher and tests can validate the environment before anything
starts. Every error names the variable at fault in one line (ConfigError), never a traceback.
Django code reads these values through django.conf.settings (assistant/settings.py copies them).
"""
import ipaddress
import os
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

EMBEDDED_REDIS_PORT = 6390
DEFAULT_MODEL_CACHE_DIR = "~/.cache/kotatsu/models"
SIZE_PATTERN = re.compile(r"^(\d+)\s*([KMGT]?)B?$", re.IGNORECASE)
SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
NODE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
SUPPORTED_DATABASE_ENGINES = {"django.db.backends.sqlite3", "django.db.backends.postgresql"}


class ConfigError(Exception):
    """A setting from the environment that Kotatsu cannot run with."""


@dataclass(frozen=True)
class IngestConfig:
    backfill_days: int
    backfill_videos: int
    max_duration_s: int
    whisper_model: str
    embedding_model: str
    language: str  # empty: whisper detects it
    use_subtitles: bool
    downloads_per_node: int
    max_attempts: int
    exact_index_limit: int
    ivf_nprobe: int
    resend_after_s: int  # a job waiting this long with nobody working on it lost its task message: sent again
    allow_private_urls: bool  # lifts the public-hosts-only rule on submitted URLs (tests, LAN media servers)


@dataclass(frozen=True)
class LLMChoiceConfig:
    """Which LLM serves each use until the admin (or `models use`) marks one; see inference.selectors.serving_model."""

    answer_model: str  # grounded answers ("kotatsu"): "auto" or a catalog LLM's name
    chat_model: str  # plain chat: "auto" or a catalog LLM's name
    interactive_tok_s: float  # "auto" takes the largest LLM the live nodes decode at least this fast


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
    model_cache_max_bytes: int  # 0: no limit
    model_cache_peer_host: str  # the address peers use to reach this node's cache server
    model_cache_peer_port: int  # 0: any free port (advertised in Redis, so peers need not know it in advance)
    node_name: str
    cluster_token: str
    port: int
    trusted_proxies: tuple  # ip_network()s whose X-Forwarded-For names the client; empty: no proxy is believed
    superuser_password: str  # empty: `make up` generates one for the first admin account
    ingest: IngestConfig
    llm: LLMChoiceConfig


def load_config(env=None):
    env = os.environ if env is None else env
    var_dir = parse_var_dir(env.get("VAR_DIR", "var"))
    node_name = parse_node_name(env.get("NODE_NAME") or socket.gethostname())
    redis_url = env.get("REDIS_URL", "").strip()
    peer_port = env.get("MODEL_CACHE_PEER_PORT")
    return Config(
        secret_key=env.get("SECRET_KEY") or read_or_create_secret(var_dir / "secret_key"),
        debug=parse_bool("DEBUG", env.get("DEBUG", "0")),
        allowed_hosts=parse_hosts(env.get("ALLOWED_HOSTS"), node_name),
        var_dir=var_dir,
        database=parse_database_url(env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'kotatsu.sqlite3'}"),
        redis_url=parse_redis_url(redis_url) if redis_url else embedded_redis_url(env),
        redis_is_embedded=not redis_url,
        model_cache_dir=model_cache_dir(env),
        model_cache_max_bytes=parse_size("MODEL_CACHE_MAX_SIZE", env.get("MODEL_CACHE_MAX_SIZE", "0")),
        model_cache_peer_host=env.get("MODEL_CACHE_PEER_HOST") or lan_address(),
        model_cache_peer_port=parse_port("MODEL_CACHE_PEER_PORT", peer_port) if peer_port else 0,
        node_name=node_name,
        cluster_token=env.get("CLUSTER_TOKEN") or read_or_create_secret(var_dir / "cluster_token"),
        port=parse_port("PORT", env.get("PORT", "8000")),
        trusted_proxies=parse_networks("TRUSTED_PROXIES", env.get("TRUSTED_PROXIES", "")),
        superuser_password=env.get("DJANGO_SUPERUSER_PASSWORD", ""),
        ingest=load_ingest_config(env),
        llm=load_llm_choice_config(env),
    )


def load_ingest_config(env):
    """Bounds of ingestion: durations in seconds, counts as whole numbers; see ingest/ for what each one bounds."""
    return IngestConfig(
        backfill_days=parse_count("INGEST_BACKFILL_DAYS", env.get("INGEST_BACKFILL_DAYS", "30")),
        backfill_videos=parse_count("INGEST_BACKFILL_VIDEOS", env.get("INGEST_BACKFILL_VIDEOS", "50")),
        max_duration_s=parse_count("INGEST_MAX_DURATION_S", env.get("INGEST_MAX_DURATION_S", str(4 * 3600))),
        whisper_model=env.get("INGEST_WHISPER_MODEL") or "whisper-base",
        embedding_model=env.get("INGEST_EMBEDDING_MODEL") or "embeddinggemma-300m",
        language=env.get("INGEST_LANGUAGE", "").strip(),
        use_subtitles=parse_bool("INGEST_USE_SUBTITLES", env.get("INGEST_USE_SUBTITLES", "0")),
        downloads_per_node=parse_positive_count("INGEST_DOWNLOADS_PER_NODE", env.get("INGEST_DOWNLOADS_PER_NODE", "2")),
        max_attempts=parse_positive_count("INGEST_MAX_ATTEMPTS", env.get("INGEST_MAX_ATTEMPTS", "4")),
        exact_index_limit=parse_count("INGEST_EXACT_INDEX_LIMIT", env.get("INGEST_EXACT_INDEX_LIMIT", "200000")),
        ivf_nprobe=parse_positive_count("INGEST_IVF_NPROBE", env.get("INGEST_IVF_NPROBE", "32")),
        resend_after_s=parse_positive_count("INGEST_RESEND_AFTER_S", env.get("INGEST_RESEND_AFTER_S", "300")),
        allow_private_urls=parse_bool("KOTATSU_ALLOW_PRIVATE_URLS", env.get("KOTATSU_ALLOW_PRIVATE_URLS", "0")),
    )


def load_llm_choice_config(env):
    return LLMChoiceConfig(
        answer_model=(env.get("KOTATSU_ANSWER_MODEL") or "auto").strip(),
        chat_model=(env.get("KOTATSU_CHAT_MODEL") or "auto").strip(),
        interactive_tok_s=parse_positive_number("KOTATSU_INTERACTIVE_TOK_S", env.get("KOTATSU_INTERACTIVE_TOK_S", "5")),
    )


def model_cache_dir(env=None):
    """MODEL_CACHE_DIR, or the default under the user's cache folder; also for benches that run without Django."""
    env = os.environ if env is None else env
    return Path(env.get("MODEL_CACHE_DIR") or DEFAULT_MODEL_CACHE_DIR).expanduser().resolve()


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


def parse_positive_count(name, value):
    count = parse_count(name, value)
    if count == 0:
        raise ConfigError(f"{name}: expected at least 1, got {value!r}")
    return count


def parse_positive_number(name, value):
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0 or number == float("inf"):
        raise ConfigError(f"{name}: expected a positive number such as 5 or 2.5, got {value!r}")
    return number


def parse_size(name, value):
    match = SIZE_PATTERN.match(value.strip())
    if not match:
        raise ConfigError(f"{name}: expected a size such as 0 (no limit), 500M or 40G, got {value!r}")
    return int(match.group(1)) * SIZE_UNITS[match.group(2).upper()]


def lan_address():
    """The address of the interface that routes to the LAN; connecting a UDP socket sends nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


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


def parse_networks(name, value):
    """Comma-separated addresses or CIDR networks (a bare address is a network of one)."""
    networks = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: expected comma-separated addresses or networks such as 10.0.0.5,10.1.0.0/16, "
                              f"got {item!r}") from None
    return tuple(networks)


def parse_database_url(value):
    try:
        # Connections close at the end of each request (CONN_MAX_AGE 0): under ASGI every request runs its database
        # work on a thread of its own, so a kept connection is never reused, only left open on an idle thread. Kept
        # for 60 s they reached 91 of PostgreSQL's 100 under 20 API clients, and a restart's reconnecting burst
        # then met "too many clients" (503s after the database was back).
        database = dj_database_url.parse(value, conn_max_age=0)
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


def redact_url(url):
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
