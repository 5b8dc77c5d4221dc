from django.conf import settings
from django.core.management.base import BaseCommand

from assistant.config import check_redis_reachable


class Command(BaseCommand):
    help = "Serve Kotatsu over ASGI (uvicorn) on PORT."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="0.0.0.0")

    def handle(self, *args, host, **options):
        import uvicorn

        check_redis_reachable(settings.REDIS_URL)
        uvicorn.run("assistant.asgi:application", host=host, port=settings.PORT, lifespan="off", log_level="info")
