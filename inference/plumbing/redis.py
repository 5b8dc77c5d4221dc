"""The one place a Redis client is built: membership, the pipeline's data plane, locks, counters, checks.

Every client has timeouts, so a Redis that stops answering surfaces as an error instead of a hang.
Celery's broker connection is Celery's own and is not built here.
"""
import redis

from inference.plumbing.config import ConfigError, redact_url

CONNECT_TIMEOUT_S = 5
# Longer than any blocking read the code issues (the pipeline's BLPOPs wait at most a few seconds).
REPLY_TIMEOUT_S = 30
HEALTH_CHECK_INTERVAL_S = 30


def redis_client(url=None, timeout_s=None):
    """A client of `url` (default: settings.REDIS_URL). `timeout_s` bounds both connecting and each reply,
    for callers that must answer quickly when Redis is away (health checks, the login page)."""
    if url is None:
        from django.conf import settings  # only Django callers omit the URL

        url = settings.REDIS_URL
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_s or CONNECT_TIMEOUT_S,
        socket_timeout=timeout_s or REPLY_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
    )


def is_answering(url, timeout_s=0.5):
    try:
        return bool(redis_client(url, timeout_s=timeout_s).ping())
    except redis.RedisError:
        return False


def check_redis_reachable(url, timeout_s=3.0):
    """Raise ConfigError naming REDIS_URL when the server does not answer PING."""
    try:
        redis_client(url, timeout_s=timeout_s).ping()
    except redis.RedisError as error:
        raise ConfigError(f"REDIS_URL: cannot reach {redact_url(url)} ({error})") from None
