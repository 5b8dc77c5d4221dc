import os
import sys

from inference.plumbing.config import ConfigError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
try:
    from django.core.asgi import get_asgi_application

    application = get_asgi_application()
except ConfigError as error:
    sys.stderr.write(f"configuration error: {error}\n")
    sys.exit(2)
