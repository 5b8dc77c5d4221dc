from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from ingest import selectors, services, tasks
from ingest.models import Source
from ingest.urlsafety import UnsafeUrl


@login_required
@require_GET
def sources(request):
    return render(request, "ingest/sources.html", progress_context(request.user))


@login_required
@require_GET
def source_progress(request):
    """The sources' progress alone, re-fetched by the dashboard and the Sources page while ingestion runs."""
    return render(request, "ingest/_source_progress.html", progress_context(request.user))


def progress_context(user):
    """The user's sources with their counts and running jobs; `ingesting` while the page should keep refreshing."""
    subscribed = list(selectors.subscribed_sources(user))
    jobs = selectors.active_jobs([source.pk for source in subscribed])
    # A source not yet listed has no jobs yet, but its videos are about to appear.
    unlisted = any(source.last_synced_at is None and not source.last_sync_error for source in subscribed)
    return {"sources": subscribed, "active_jobs": jobs, "ingesting": bool(jobs) or unlisted}


@login_required
@require_POST
def subscribe(request):
    try:
        source, created = services.do_subscribe(request.user, request.POST.get("url", ""))
    except UnsafeUrl as error:
        messages.error(request, _("Not subscribed: %(reason)s.") % {"reason": error})
        return back_to_page(request)
    if created:
        tasks.sync_source.delay(source.pk)
    messages.success(request, _("Subscribed to %(source)s.") % {"source": source})
    return back_to_page(request)


@login_required
@require_POST
def unsubscribe(request, source_id):
    services.do_unsubscribe(request.user, source_id)
    return back_to_page(request)


@login_required
@require_POST
def sync_now(request, source_id):
    source = get_object_or_404(Source, pk=source_id, subscriptions__user=request.user)
    tasks.sync_source.delay(source.pk)
    messages.success(request, _("Syncing %(source)s.") % {"source": source})
    return back_to_page(request)


def back_to_page(request):
    """The page the form was on (the dashboard or the Sources page), else the Sources page."""
    page = request.headers.get("Referer", "")
    if url_has_allowed_host_and_scheme(page, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(page)
    return redirect("sources")
