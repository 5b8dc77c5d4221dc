"""A limit on failed logins per (username, client address), counted in Redis so every web process shares it.

Counting per pair rather than per username keeps an attacker elsewhere from locking an employee out of their
own desk; counting per pair rather than per address keeps one shared NAT from locking out a whole office.
"""
import hashlib

from inference.plumbing.redis import redis_client as cluster_redis_client

MAX_FAILURES = 5
LOCKOUT_S = 15 * 60


def redis_client():
    # The login page must answer quickly when Redis is away.
    return cluster_redis_client(timeout_s=2)


def failure_key(username, client_address):
    # Hashed so that arbitrary usernames typed into the form never shape Redis key names.
    digest = hashlib.sha256(f"{username.strip().lower()}\0{client_address}".encode()).hexdigest()
    return f"kotatsu:login-failures:{digest}"


def client_address(request):
    return request.META.get("REMOTE_ADDR", "")


def is_locked_out(username, address):
    failures = redis_client().get(failure_key(username, address))
    return failures is not None and int(failures) >= MAX_FAILURES


def record_failure(username, address):
    """Count one more failure; the lockout window restarts with each failure."""
    key = failure_key(username, address)
    with redis_client().pipeline() as pipeline:
        pipeline.incr(key).expire(key, LOCKOUT_S).execute()


def clear_failures(username, address):
    redis_client().delete(failure_key(username, address))
