"""The site's login and the admin's share one failed-login limit: five failures for a username from an address
lock that pair on both forms, and twenty from one address lock every username from it."""
import pytest
from django.contrib.auth import get_user_model

from assistant import login_limit
from tests.assistant.login_helpers import forget_failures

pytestmark = pytest.mark.django_db
PASSWORD = "a long pass phrase 42"
ADDRESSES = ["127.0.0.1", "10.0.0.7", "10.0.0.8"]
USERNAMES = ["ivan", "judy"] + [f"guess{n}" for n in range(login_limit.MAX_FAILURES_PER_ADDRESS)]


@pytest.fixture(autouse=True)
def accounts():
    get_user_model().objects.create_user("ivan", password=PASSWORD, is_staff=True)
    get_user_model().objects.create_user("judy", password=PASSWORD)
    yield
    forget_failures(USERNAMES, ADDRESSES)


def log_in(client, path, username, password, address="127.0.0.1", **headers):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def fail_until_locked(client, path, username):
    for _ in range(login_limit.MAX_FAILURES):
        log_in(client, path, username, "wrong")


def is_logged_in(client):
    return "_auth_user_id" in client.session


def test_five_failures_on_the_admin_login_lock_it(client):
    fail_until_locked(client, "/admin/login/", "ivan")
    response = log_in(client, "/admin/login/", "ivan", PASSWORD)
    assert b"Too many failed attempts" in response.content
    assert not is_logged_in(client)


def test_a_staff_account_locked_on_the_site_login_is_locked_on_the_admin_login(client):
    fail_until_locked(client, "/login/", "ivan")
    response = log_in(client, "/admin/login/", "ivan", PASSWORD)
    assert b"Too many failed attempts" in response.content
    assert not is_logged_in(client)


def test_an_account_locked_on_the_admin_login_is_locked_on_the_site_login(client):
    fail_until_locked(client, "/admin/login/", "ivan")
    assert log_in(client, "/login/", "ivan", PASSWORD).status_code == 429
    assert not is_logged_in(client)


def test_x_forwarded_for_from_an_untrusted_peer_does_not_change_the_counted_address(client):
    fail_until_locked(client, "/login/", "judy")
    assert log_in(client, "/login/", "judy", PASSWORD, HTTP_X_FORWARDED_FOR="10.0.0.7").status_code == 429


def test_the_right_password_of_an_employee_on_the_admin_login_is_not_a_failure(client):
    # Refused (judy is not staff), but she typed her own password: that must not count toward her lock.
    for _ in range(login_limit.MAX_FAILURES):
        assert b"staff account" in log_in(client, "/admin/login/", "judy", PASSWORD).content
    assert log_in(client, "/login/", "judy", PASSWORD).status_code == 302


def test_twenty_failures_from_one_address_lock_every_username_from_it(client):
    for n in range(login_limit.MAX_FAILURES_PER_ADDRESS):
        assert log_in(client, "/login/", f"guess{n}", "wrong", address="10.0.0.8").status_code == 200
    assert log_in(client, "/login/", "judy", PASSWORD, address="10.0.0.8").status_code == 429
    assert log_in(client, "/login/", "judy", PASSWORD, address="10.0.0.7").status_code == 302
