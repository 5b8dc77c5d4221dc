import logging
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections

from assistant.answering import warm_up
from inference.plumbing.redis import check_redis_reachable

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Serve Kotatsu over ASGI (uvicorn) on PORT."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="0.0.0.0")

    def handle(self, *args, host, **options):
        import uvicorn

        check_redis_reachable(settings.REDIS_URL)
        threading.Thread(target=warm_up_in_background, daemon=True, name="warm-up").start()
        # proxy_headers off: uvicorn would otherwise take the client address from X-Forwarded-For sent through
        # loopback, so any local client could pick it. The peer stays the peer; assistant.login_limit reads
        # X-Forwarded-For only from TRUSTED_PROXIES.
        uvicorn.run("assistant.asgi:application", host=host, port=settings.PORT, lifespan="off", log_level="info",
                    proxy_headers=False)


def warm_up_in_background():
    """Pages and the API are served meanwhile; a question asked before the models are loaded waits for them."""
    try:
        warm_up()
        logger.info("warmed up: the models and indexes the first question needs are loaded")
    except Exception:
        logger.exception("warm-up failed; the first question will load what it needs itself")
    finally:
        connections.close_all()
