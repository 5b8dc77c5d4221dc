"""A database that is away (PostgreSQL restarting, the link to it cut) answers 503 with a clear message
instead of a crash page: OpenAI's JSON error under /v1, a short page elsewhere. Each request opens its own
connection (CONN_MAX_AGE 0), so the first request after the database is back succeeds."""
import logging
import time

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER_S = 5
# English in the API's JSON, the reader's language on the HTML page.
MESSAGE = gettext_noop("The database is unavailable (restarting or unreachable); try again in a few seconds.")
# Under load every request of an outage fails alike: one log line per this many seconds says it.
LOG_INTERVAL_S = 10.0
_last_logged = [0.0]


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    def process_exception(self, request, exception):
        if not isinstance(exception, DATABASE_UNAVAILABLE):
            return None
        now = time.monotonic()
        if now - _last_logged[0] >= LOG_INTERVAL_S:
            _last_logged[0] = now
            reason = str(exception).strip().splitlines() or [type(exception).__name__]
            logger.warning("database unavailable, answering 503: %s", reason[0])
        return database_unavailable_response(request)


def database_unavailable_response(request):
    if request.path.startswith("/v1/"):
        body = {"error": {"message": MESSAGE, "type": "server_error", "param": None, "code": "database_unavailable"}}
        response = JsonResponse(body, status=503)
    else:
        # Plain HTML: the site's templates read the database (navigation), which is what is missing.
        title = _("Service unavailable")
        response = HttpResponse(
            f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{_(MESSAGE)}</p>",
            status=503,
        )
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response
