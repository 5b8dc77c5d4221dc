"""Writes of the assistant app."""
from django.contrib.auth import get_user_model

from assistant.models import ApiKey


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


def do_ensure_admin_account(password=None):
    """Create the first staff account when none exists; return (username, password) or None."""
    from django.utils.crypto import get_random_string

    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return None
    password = password or get_random_string(20)
    User.objects.create_superuser("admin", email="", password=password)
    return "admin", password
