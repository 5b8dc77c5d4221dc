"""Django settings: every runtime value comes from inference.plumbing.config, which parses the environment."""
from pathlib import Path

from inference.plumbing.config import load_config

CONFIG = load_config()
BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = CONFIG.allowed_hosts
VAR_DIR = CONFIG.var_dir
MODEL_CACHE_DIR = CONFIG.model_cache_dir
MODEL_CACHE_MAX_BYTES = CONFIG.model_cache_max_bytes
MODEL_CACHE_PEER_HOST = CONFIG.model_cache_peer_host
MODEL_CACHE_PEER_PORT = CONFIG.model_cache_peer_port
NODE_NAME = CONFIG.node_name
CLUSTER_TOKEN = CONFIG.cluster_token
PORT = CONFIG.port
TRUSTED_PROXIES = CONFIG.trusted_proxies
REDIS_URL = CONFIG.redis_url
REDIS_IS_EMBEDDED = CONFIG.redis_is_embedded
SUPERUSER_PASSWORD = CONFIG.superuser_password
LOG_DIR = VAR_DIR / "logs"
AUDIO_TMP_DIR = VAR_DIR / "audio"
INDEX_DIR = VAR_DIR / "index"

# Ingestion. Durations in seconds, counts as integers; see ingest/ for what each one bounds.
INGEST_BACKFILL_DAYS = CONFIG.ingest.backfill_days
INGEST_BACKFILL_VIDEOS = CONFIG.ingest.backfill_videos
INGEST_MAX_DURATION_S = CONFIG.ingest.max_duration_s
INGEST_WHISPER_MODEL = CONFIG.ingest.whisper_model
INGEST_EMBEDDING_MODEL = CONFIG.ingest.embedding_model
INGEST_LANGUAGE = CONFIG.ingest.language
INGEST_USE_SUBTITLES = CONFIG.ingest.use_subtitles
INGEST_DOWNLOADS_PER_NODE = CONFIG.ingest.downloads_per_node
INGEST_MAX_ATTEMPTS = CONFIG.ingest.max_attempts
INGEST_EXACT_INDEX_LIMIT = CONFIG.ingest.exact_index_limit
INGEST_IVF_NPROBE = CONFIG.ingest.ivf_nprobe
INGEST_RESEND_AFTER_S = CONFIG.ingest.resend_after_s
ALLOW_PRIVATE_URLS = CONFIG.ingest.allow_private_urls
# Which LLM serves grounded answers and plain chat until the admin marks one (inference.selectors.serving_model).
LLM_ANSWER_MODEL = CONFIG.llm.answer_model
LLM_CHAT_MODEL = CONFIG.llm.chat_model
LLM_INTERACTIVE_TOK_S = CONFIG.llm.interactive_tok_s

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "assistant",
    "ingest",
    "inference",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page's language: the browser's Accept-Language (or the language cookie); then, once the user is known,
    # the language the employee chose on the dashboard.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "assistant.languages.chosen_language_middleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "assistant.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "assistant.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "assistant.navigation.navigation",
            ],
        },
    },
]
WSGI_APPLICATION = "assistant.wsgi.application"
ASGI_APPLICATION = "assistant.asgi.application"

DATABASES = {"default": CONFIG.database}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file (not :memory:) so that worker processes started by integration tests see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-kotatsu.sqlite3")}
    # Several local processes (web, workers, beat) write this one file. A transaction that starts by reading
    # cannot wait for the write lock (SQLite fails it at once to avoid a deadlock), so every transaction takes
    # the write lock when it begins, and WAL lets readers go on while one process writes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # A restarted PostgreSQL breaks the connection of a long-running loop (beat, a worker between tasks): it is
    # checked before it is used again.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ja", "日本語")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600  # a choice made in this browser outlives its session
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request until collectstatic has run
# The apps' own static files are served where they are, so a server started without collectstatic (tests) has them.
WHITENOISE_USE_FINDERS = True

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "any"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker reconnects to a restarted Redis however long it is away, instead of exiting after 100 tries.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A redelivered long task (whisper on an hour of audio) must not be handed out again while it still runs.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    # faiss reports at INFO which CPU build it loaded, in five lines, on every start.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "faiss.loader": {"level": "WARNING"}},
}
