"""Checks behind GET /health: each returns a dict with "ok" and details, never raises.

Anyone may ask whether the node is up; the details (addresses, paths, worker names) are for staff only:
a staff session, or a staff user's API key as `Authorization: Bearer KEY` (for monitoring).
"""
import os
import shutil

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from assistant.selectors import get_api_key
from inference.plumbing.config import redact_url
from inference.plumbing.redis import redis_client


def check_database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as error:
        return {"ok": False, "vendor": connection.vendor, "error": str(error).splitlines()[0]}


def check_redis():
    try:
        redis_client(timeout_s=1).ping()
        return {"ok": True, "url": redact_url(settings.REDIS_URL), "embedded": settings.REDIS_IS_EMBEDDED}
    except redis.RedisError as error:
        return {"ok": False, "url": redact_url(settings.REDIS_URL), "error": str(error)}


def check_workers(redis_ok):
    if not redis_ok:
        return {"ok": False, "seen": [], "error": "the broker (Redis) is unreachable"}
    from assistant.celery import app

    try:
        with app.connection_for_write(settings.REDIS_URL) as connection:
            replies = app.control.ping(timeout=1.0, connection=connection)
    except Exception as error:
        return {"ok": False, "seen": [], "error": str(error)}
    seen = sorted(name for reply in replies for name in reply)
    return {"ok": bool(seen), "seen": seen}


def check_model_cache():
    path = settings.MODEL_CACHE_DIR
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return {"ok": False, "path": str(path), "error": error.strerror}
    writable = os.access(path, os.W_OK)
    result = {"ok": writable, "path": str(path), "writable": writable, "free_bytes": shutil.disk_usage(path).free}
    if not writable:
        result["error"] = "not writable"
        return result
    from inference.selectors import model_store

    cached = model_store().cached_models()
    result["models"] = sorted(model.name for model in cached)
    result["cached_bytes"] = sum(model.size for model in cached)
    return result


def health_report():
    redis_state = check_redis()
    checks = {
        "database": check_database(),
        "redis": redis_state,
        "workers": check_workers(redis_state["ok"]),
        "model_cache": check_model_cache(),
    }
    return {"status": overall_status(checks), "node": settings.NODE_NAME, **checks}


def overall_status(checks):
    """"down" when this node cannot serve at all (no database), "degraded" when it serves but work would not
    progress (Redis away for a while: every process reconnects by itself; no worker, no model cache)."""
    if not checks["database"]["ok"]:
        return "down"
    return "ok" if all(check["ok"] for check in checks.values()) else "degraded"


def may_see_details(request):
    try:
        if request.user.is_authenticated and request.user.is_staff:
            return True
        scheme, _, raw_key = request.headers.get("Authorization", "").partition(" ")
        api_key = get_api_key(raw_key.strip()) if scheme.lower() == "bearer" else None
        return api_key is not None and api_key.user.is_staff
    except DatabaseError:  # nobody can be recognised: "down" says enough
        return False
