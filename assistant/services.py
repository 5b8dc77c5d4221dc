"""Writes of the assistant app."""
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from assistant.models import ApiKey, Conversation, DashboardVisit, LanguageChoice, Message, VideoMark

TITLE_LENGTH = 80
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



def do_choose_language(user, language):
    LanguageChoice.objects.update_or_create(user=user, defaults={"language": language})


def do_mark_video(user, video, kind):
    """Record the employee's verdict on the video (VideoMark.WATCHED or NOT_INTERESTED), replacing an earlier one."""
    VideoMark.objects.update_or_create(user=user, video=video, defaults={"kind": kind})
