import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from assistant.models import ApiKey
from assistant.selectors import get_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def employee():
    return get_user_model().objects.create_user("carol", password="x" * 12)


def user_of(raw_key):
    api_key = get_api_key(raw_key)
    return api_key.user if api_key else None


def create_key(username):
    out = io.StringIO()
    call_command("apikey", "create", "--user", username, stdout=out)
    return out.getvalue()


def test_the_new_key_is_the_last_word_of_the_last_line(employee):
    raw_key = create_key("carol").strip().splitlines()[-1].split()[-1]
    assert raw_key.startswith(ApiKey.PREFIX) and len(raw_key) > 40
    assert user_of(raw_key) == employee


def test_only_a_hash_of_the_key_is_stored(employee):
    raw_key = create_key("carol").split()[-1]
    stored = ApiKey.objects.get()
    assert raw_key not in {stored.key_hash, stored.visible_prefix, stored.name}
    assert stored.key_hash == ApiKey.hash_raw_key(raw_key)


def test_the_key_is_shown_once_and_never_again(employee):
    raw_key = create_key("carol").split()[-1]
    listing = io.StringIO()
    call_command("apikey", "list", "--user", "carol", stdout=listing)
    assert raw_key not in listing.getvalue()
    assert ApiKey.objects.get().visible_prefix in listing.getvalue()


def test_a_revoked_key_no_longer_authenticates(employee):
    raw_key = create_key("carol").split()[-1]
    ApiKey.objects.get().revoke()
    assert user_of(raw_key) is None


def test_staff_revoke_keys_with_the_admin_action(admin_client, employee):
    raw_key = create_key("carol").split()[-1]
    response = admin_client.post(
        "/admin/assistant/apikey/",
        {"action": "revoke_keys", "_selected_action": [ApiKey.objects.get().pk]},
    )
    assert response.status_code == 302
    assert user_of(raw_key) is None


def test_unknown_and_malformed_keys_authenticate_nobody(employee):
    create_key("carol")
    assert user_of("") is None
    assert user_of("kot_not-a-real-key") is None
    assert user_of("sk-something-else") is None


def test_creating_a_key_for_an_unknown_user_is_a_clear_error():
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        create_key("nobody")
