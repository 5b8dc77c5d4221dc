from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ingest import selectors, services, tasks
from ingest.models import Source
from ingest.urlsafety import UnsafeUrl


@login_required
def sources(request):
    subscribed = list(selectors.subscribed_sources(request.user))
    context = {"sources": subscribed, "active_jobs": selectors.active_jobs([source.pk for source in subscribed])}
    return render(request, "ingest/sources.html", context)


@login_required
@require_POST
def subscribe(request):
    try:
        source, created = services.do_subscribe(request.user, request.POST.get("url", ""))
    except UnsafeUrl as error:
        messages.error(request, _("Not subscribed: %(reason)s.") % {"reason": error})
        return redirect("sources")
    if created:
        tasks.sync_source.delay(source.pk)
    messages.success(request, _("Subscribed to %(source)s.") % {"source": source})
    return redirect("sources")


@login_required
@require_POST
def unsubscribe(request, source_id):
    services.do_unsubscribe(request.user, source_id)
    return redirect("sources")


@login_required
@require_POST
def sync_now(request, source_id):
    source = get_object_or_404(Source, pk=source_id, subscriptions__user=request.user)
    tasks.sync_source.delay(source.pk)
    messages.success(request, _("Syncing %(source)s.") % {"source": source})
    return redirect("sources")
