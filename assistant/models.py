import hashlib
import secrets

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
