"""Reads of the assistant app."""
from django.utils import timezone

from assistant.models import ApiKey


def get_user_for_api_key(raw_key):
    """The active user owning this key, or None for a missing, unknown or revoked key."""
    if not raw_key or not raw_key.startswith(ApiKey.PREFIX):
        return None
    api_key = (
        ApiKey.objects.select_related("user")
        .filter(key_hash=ApiKey.hash_raw_key(raw_key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if api_key is None:
        return None
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
    return api_key.user
