"""The interface language: the browser's Accept-Language by default (LocaleMiddleware), the employee's own
choice from the dashboard once they made one, in every browser they log in from."""
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.utils import translation
from django.utils.decorators import sync_and_async_middleware
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from assistant.middleware import DATABASE_UNAVAILABLE, database_unavailable_response
from assistant.selectors import chosen_language
from assistant.services import do_choose_language

# The user's choice, read from the database once per session ("" for none: the browser decides).
SESSION_KEY = "chosen_language"


@sync_and_async_middleware
def chosen_language_middleware(get_response):
    """After LocaleMiddleware and authentication: a logged-in employee's chosen language overrides the browser's.
    Only a request with a session cookie can be a logged-in employee's: the others (the API's, with a key) go
    through without a detour into the thread where Django runs synchronous code."""
    if iscoroutinefunction(get_response):
        async def middleware(request):
            if settings.SESSION_COOKIE_NAME in request.COOKIES:
                unavailable = await sync_to_async(activate_chosen_language, thread_sensitive=True)(request)
                if unavailable is not None:
                    return unavailable
            return await get_response(request)
    else:
        def middleware(request):
            if settings.SESSION_COOKIE_NAME in request.COOKIES:
                unavailable = activate_chosen_language(request)
                if unavailable is not None:
                    return unavailable
            return get_response(request)
    return middleware


def activate_chosen_language(request):
    """Activate the user's chosen language, if any; a 503 response when the database is away."""
    try:
        if not request.user.is_authenticated:
            return None
        if SESSION_KEY not in request.session:
            request.session[SESSION_KEY] = chosen_language(request.user)
        language = request.session[SESSION_KEY]
    except DATABASE_UNAVAILABLE:
        # Reading the session or the choice is the first use of the database, before any view.
        return database_unavailable_response(request)
    if language:
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
    return None
@login_required
@require_POST
def choose_language(request):
    language = request.POST.get("language", "")
    if language in dict(settings.LANGUAGES):
        do_choose_language(request.user, language)
        request.session[SESSION_KEY] = language
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        next_url = "dashboard"
    response = redirect(next_url)
    if language in dict(settings.LANGUAGES):
        # The login page, before anyone is known, speaks the language last chosen in this browser too.
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, max_age=settings.LANGUAGE_COOKIE_AGE, samesite="Lax")
    return response
