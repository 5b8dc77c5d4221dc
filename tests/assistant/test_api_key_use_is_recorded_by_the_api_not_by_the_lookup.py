"""Looking a key up writes nothing; a request of the API records the key's last use, at most once a minute."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from assistant.models import ApiKey
from assistant.selectors import get_api_key
from assistant.services import do_create_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def key():
    user = get_user_model().objects.create_user("erin", password="x" * 12)
    return do_create_api_key(user)


def last_used_at():
    return ApiKey.objects.get().last_used_at


def test_looking_a_key_up_leaves_its_last_use_unchanged(key):
    _, raw_key = key
    assert get_api_key(raw_key) is not None
    assert last_used_at() is None


def test_an_api_request_records_the_last_use(client, key):
    _, raw_key = key
    response = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert response.status_code == 200
    assert timezone.now() - last_used_at() < timedelta(seconds=30)


def test_a_second_request_within_the_minute_writes_nothing(client, key):
    _, raw_key = key
    a_moment_ago = timezone.now() - timedelta(seconds=20)
    ApiKey.objects.update(last_used_at=a_moment_ago)
    client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert last_used_at() == a_moment_ago

    ApiKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert timezone.now() - last_used_at() < timedelta(seconds=30)
