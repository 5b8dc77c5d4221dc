"""Five failed logins for one username from one address lock that pair out for 15 minutes."""
import time

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from assistant import login_limit
from tests.assistant.login_helpers import forget_failures

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


@pytest.fixture
def employee():
    user = get_user_model().objects.create_user("dora", password=PASSWORD)
    yield user
    forget_failures(["dora"], ["127.0.0.1", "10.0.0.7"])


def log_in(client, password, address="127.0.0.1"):
    return client.post(reverse("login"), {"username": "dora", "password": password}, REMOTE_ADDR=address)


def fail_until_locked(client):
    for _ in range(login_limit.MAX_FAILURES):
        assert log_in(client, "wrong").status_code == 200


def test_the_right_password_is_refused_after_five_failures(client, employee):
    fail_until_locked(client)
    response = log_in(client, PASSWORD)
    assert response.status_code == 429
    assert b"Too many failed attempts" in response.content
    assert client.get(reverse("dashboard")).status_code == 302


def test_four_failures_still_let_the_employee_in(client, employee):
    for _ in range(login_limit.MAX_FAILURES - 1):
        log_in(client, "wrong")
    assert log_in(client, PASSWORD).status_code == 302


def test_a_successful_login_resets_the_count(client, employee):
    for _ in range(login_limit.MAX_FAILURES - 1):
        log_in(client, "wrong")
    assert log_in(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(login_limit.MAX_FAILURES - 1):
        log_in(client, "wrong")
    assert log_in(client, PASSWORD).status_code == 302


def test_the_lock_holds_for_one_pair_of_username_and_address_only(client, employee):
    fail_until_locked(client)
    assert log_in(client, PASSWORD, address="10.0.0.7").status_code == 302


def test_the_lock_expires_after_fifteen_minutes(client, employee):
    fail_until_locked(client)
    key = login_limit.failure_key("dora", "127.0.0.1")
    assert 0 < login_limit.redis_client().ttl(key) <= login_limit.LOCKOUT_S
    # Fast-forward the window to its last second rather than wait 15 minutes.
    login_limit.redis_client().pexpire(key, 200)
    time.sleep(0.4)
    assert log_in(client, PASSWORD).status_code == 302
