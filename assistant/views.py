import logging

from asgiref.sync import sync_to_async
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from assistant.answering import LEAD_IN_S, GroundedAnswer, link_at
from assistant.forms import AskForm, LoginForm, SearchForm
from assistant.health import health_report, may_see_details
from assistant.selectors import conversations_of, dashboard_visit_start, worth_watching
from assistant.services import do_record_dashboard_visit, do_record_exchange, do_start_conversation
from assistant.streaming import cluster_unavailable, iterate_in_thread, sse_event
from ingest import selectors as ingest_selectors
from ingest.moments import find_moments
from ingest.retrieval import Filters
from ingest.views import progress_context

logger = logging.getLogger(__name__)
RECENT_CONVERSATIONS = 20
SEARCH_RESULTS = 10


@require_GET
def health(request):
    report = health_report()
    status = 200 if report["status"] == "ok" else 503
    if not may_see_details(request):
        report = {"status": report["status"]}
    return JsonResponse(report, status=status)


@login_required
def dashboard(request):
    since = dashboard_visit_start(request.user)  # the page itself posts the visit once shown
    context = {
        "api_keys": request.user.api_keys.filter(revoked_at__isnull=True),
        "conversations": conversations_of(request.user)[:RECENT_CONVERSATIONS],
        "worth_watching": worth_watching(request.user, since),
        "since": since,
        **progress_context(request.user),
    }
    return render(request, "assistant/dashboard.html", context)


@login_required
@require_POST
def record_dashboard_visit(request):
    """Posted by the dashboard once shown: the visit "worth watching" counts the next one from."""
    do_record_dashboard_visit(request.user)
    return HttpResponse(status=204)


@login_required
@require_GET
def ask(request, conversation_id=None):
    conversation = None
    if conversation_id is not None:
        conversation = get_object_or_404(conversations_of(request.user), pk=conversation_id)
    context = {
        "conversation": conversation,
        "conversations": conversations_of(request.user)[:RECENT_CONVERSATIONS],
        "sources": ingest_selectors.subscribed_sources(request.user),
    }
    return render(request, "assistant/ask.html", context)


@require_POST
@login_required
async def ask_stream(request):
    """Answer a question as server-sent events: "delta" {text} while generating, then "done" with the
    answer's HTML (citations as links), its sources and the conversation's URL; "error" if it fails."""
    user = await request.auser()
    form = AskForm(request.POST)
    if not await sync_to_async(form.is_valid)():
        return JsonResponse({"errors": form.errors}, status=400)
    conversation = None
    if form.cleaned_data["conversation"]:
        conversation = await sync_to_async(get_object_or_404)(conversations_of(user), pk=form.cleaned_data["conversation"])
    question = form.cleaned_data["question"]
    filters = Filters(
        source_id=form.cleaned_data["source"] or None,
        published_after=form.cleaned_data["published_after"],
        published_before=form.cleaned_data["published_before"],
    )

    def produce(emit):
        answer = GroundedAnswer(question, conversation.chat_history() if conversation else [], filters)
        for delta in answer:
            emit(("delta", {"text": delta}))
        thread = conversation or do_start_conversation(user, question)
        reply = do_record_exchange(thread, question, answer)
        emit(("done", {
            "html": render_to_string("assistant/_answer.html", {"message": reply}),
            "sources": answer.sources,
            "ttft_s": answer.ttft_s,
            "conversation_id": thread.pk,
            "conversation_title": thread.title,
            "conversation_url": reverse("conversation", args=[thread.pk]),
        }))

    async def events():
        try:
            async for event, data in iterate_in_thread(produce):
                yield sse_event(data, event)
        except Exception as error:
            logger.exception("answering %r failed", question)
            yield sse_event({"message": cluster_unavailable(error) or str(error)}, "error")

    return StreamingHttpResponse(events(), content_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@login_required
@require_GET
def search(request):
    """Moments where something was said: the video, the second, the words, a link and a player opening there."""
    form = SearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    moments = []
    if query:
        found = find_moments(query, Filters(source_id=form.cleaned_data["source"]), limit=SEARCH_RESULTS)
        # Labelled with the second the words begin, opening a few seconds before, as citations do.
        moments = [{"moment": moment, "url": link_at(moment.video.url, max(moment.start_s - LEAD_IN_S, 0))} for moment in found]
    context = {
        "form": form,
        "query": query,
        "moments": moments,
        "sources": ingest_selectors.subscribed_sources(request.user),
    }
    return render(request, "assistant/search.html", context)


class LoginView(auth_views.LoginView):
    """Django's login with the failed-login limit (in LoginForm); a locked-out attempt answers 429."""

    authentication_form = LoginForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.is_locked_out():
            response.status_code = 429
        return response
