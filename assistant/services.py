"""Writes of the assistant app."""
from datetime import timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from assistant.models import ApiKey, Conversation, DashboardVisit, Message, VideoSummary
from ingest.retrieval import embed_texts
from ingest.models import Video
from ingest.services import claim_for_this_process

TITLE_LENGTH = 80
SUMMARY_SEGMENTS = 3
LAST_USED_PRECISION = timedelta(minutes=1)


def do_create_api_key(user, name=""):
    """Create a key and return (ApiKey, raw key). The raw key exists only in this return value."""
    raw_key = ApiKey.generate_raw_key()
    api_key = ApiKey.objects.create(
        user=user,
        name=name,
        visible_prefix=raw_key[: len(ApiKey.PREFIX) + 6],
        key_hash=ApiKey.hash_raw_key(raw_key),
    )
    return api_key, raw_key



def do_touch_api_key(api_key):
    """Record that the key was just used; at most one write a minute per key, so that a busy client does not
    turn every request into a database write."""
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


def do_ensure_admin_account(password=None):
    """Create the first staff account when none exists; return (username, password) or None."""
    from django.utils.crypto import get_random_string

    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return None
    password = password or get_random_string(20)
    User.objects.create_superuser("admin", email="", password=password)
    return "admin", password


def do_start_conversation(user, question):
    title = question if len(question) <= TITLE_LENGTH else question[: TITLE_LENGTH - 1] + "…"
    return Conversation.objects.create(user=user, title=title)


def do_record_exchange(conversation, question, answer):
    """Store a question and its answer (a finished GroundedAnswer) together, or neither."""
    with transaction.atomic():
        Message.objects.create(conversation=conversation, role=Message.USER, content=question)
        reply = Message.objects.create(
            conversation=conversation, role=Message.ASSISTANT, content=answer.text, sources=answer.sources, ttft_s=answer.ttft_s
        )
        conversation.save(update_fields=["updated_at"])
    return reply


def do_record_dashboard_visit(user):
    """Note this visit; return when the previous visit began (None on the first), the start of "new"."""
    now = timezone.now()
    visit, created = DashboardVisit.objects.get_or_create(user=user, defaults={"last_seen_at": now})
    if not created:
        visit.record(now)
        visit.save()
    return visit.previous_visit_at


def do_summarize_video(video_id):
    """Write the video's summary, unless it is written or another live process is writing it; return whether
    this call wrote it.

    Its SUMMARY_SEGMENTS transcript segments closest to the meaning of the whole, in spoken order: extracted
    rather than generated, because SmolLM2-135M's summaries of our transcripts invent what the video does not
    say (knives "never" go on the magnetic strip, a churn figure nobody gave), and a summary is read instead
    of the video."""
    VideoSummary.objects.get_or_create(video_id=video_id)
    unwritten = VideoSummary.objects.filter(video_id=video_id, written_at__isnull=True)
    summarizer = claim_for_this_process(unwritten, "summarizer", "claimed_at")
    if summarizer is None:
        return False
    segments = [segment["text"].strip() for segment in Video.objects.get(pk=video_id).segments if segment["text"].strip()]
    text = ""
    if segments:
        vectors = embed_texts(segments)
        centrality = vectors @ vectors.mean(axis=0)
        chosen = sorted(np.argsort(-centrality)[:SUMMARY_SEGMENTS])
        text = " ".join(segments[index] for index in chosen)
    written = VideoSummary.objects.filter(video_id=video_id, summarizer=summarizer).update(
        text=text, written_at=timezone.now(), summarizer=""
    )
    return written == 1

