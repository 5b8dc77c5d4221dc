import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    """A per-user key for the OpenAI-compatible API. Only its sha256 is stored; the key is shown once."""

    PREFIX = "kot_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    # The first characters, kept in clear so a user can tell their keys apart in lists.
    visible_prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.visible_prefix}… ({self.user})"

    @classmethod
    def generate_raw_key(cls):
        return cls.PREFIX + secrets.token_urlsafe(32)

    @staticmethod
    def hash_raw_key(raw_key):
        # Keys carry 256 random bits, so a fast hash is enough and allows lookup by hash.
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @property
    def is_active(self):
        return self.revoked_at is None

    def revoke(self):
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


class Conversation(models.Model):
    """An employee's thread of questions and grounded answers. Private: only its owner ever sees it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self):
        return self.title

    def chat_history(self):
        """Earlier turns as chat messages, oldest first, for the prompt of the next answer."""
        return [{"role": message.role, "content": message.content} for message in self.messages.all()]


class Message(models.Model):
    USER = "user"
    ASSISTANT = "assistant"
    ROLES = [(USER, "user"), (ASSISTANT, "assistant")]

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=20, choices=ROLES)
    content = models.TextField()
    # For answers: the cited sources as [{"n", "video_id", "title", "url", "start_s", "end_s", "score"}].
    sources = models.JSONField(default=list, blank=True)
    ttft_s = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.role}: {self.content[:60]}"


class DashboardVisit(models.Model):
    """When an employee last looked at the dashboard, so "worth watching" lists only what is new to them.

    Requests less than VISIT_GAP apart belong to one visit: reloading the page must not empty the list.
    """

    VISIT_GAP = timedelta(minutes=30)

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dashboard_visit")
    previous_visit_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField()

    def record(self, now):
        self.previous_visit_at = self.visit_start(now)
        self.last_seen_at = now

    def visit_start(self, now):
        """Where "new" begins for a visit at `now`: the visit before this one (None on the first)."""
        return self.last_seen_at if now - self.last_seen_at > self.VISIT_GAP else self.previous_visit_at



class LanguageChoice(models.Model):
    """The interface language an employee chose on the dashboard, in every browser they log in from; without
    one, their browser's Accept-Language decides."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="language_choice")
    language = models.CharField(max_length=10)  # a code of settings.LANGUAGES
    chosen_at = models.DateTimeField(auto_now=True)


class VideoMark(models.Model):
    """An employee's verdict on a video in "worth watching": watched (it leaves their list and videos like it
    rise) or not interested (it leaves their list and videos like it sink)."""

    WATCHED = "watched"
    NOT_INTERESTED = "not_interested"
    KINDS = [(WATCHED, "watched"), (NOT_INTERESTED, "not interested")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="video_marks")
    video = models.ForeignKey("ingest.Video", on_delete=models.CASCADE, related_name="marks")
    kind = models.CharField(max_length=20, choices=KINDS)
    marked_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "video"], name="one_mark_per_user_and_video")]

    def __str__(self):
        return f"{self.user}: {self.video} {self.kind}"
