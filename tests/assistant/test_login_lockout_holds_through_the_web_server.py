"""Through `manage.py web` (uvicorn), as the reviewer found it: a locked (username, address) pair stays locked
whatever X-Forwarded-For the client sends, on the site's login and the admin's; only a proxy listed in
TRUSTED_PROXIES (here 127.0.0.2) is believed about who its client is."""
import pytest
from django.contrib.auth import get_user_model

from assistant import login_limit
from tests.assistant.conftest import start_web_server
from tests.assistant.login_helpers import forget_failures, post_login
from tests.conftest import stop_process

# The accounts are committed once for the module (server) for the web server to see.
pytestmark = pytest.mark.django_db
PASSWORD = "a long pass phrase 42"
TRUSTED_PROXY = "127.0.0.2"
ADDRESSES = ["127.0.0.1", TRUSTED_PROXY, "203.0.113.5", "203.0.113.6"]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.core.management import call_command

    with django_db_blocker.unblock():
        get_user_model().objects.create_user("grace", password=PASSWORD, is_staff=True)
        get_user_model().objects.create_user("heidi", password=PASSWORD)
    process, base_url = start_web_server(tmp_path_factory.mktemp("web") / "web.log", TRUSTED_PROXIES=TRUSTED_PROXY)
    try:
        yield base_url
    finally:
        stop_process(process)
        forget_failures(["grace", "heidi"], ADDRESSES)
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(autouse=True)
def no_failures_left_behind():
    yield
    forget_failures(["grace", "heidi"], ADDRESSES)


def fail_until_locked(server, username, path="/login/", **origin):
    for _ in range(login_limit.MAX_FAILURES):
        assert post_login(server, path, username, "wrong", **origin).status_code == 200


def test_a_locked_pair_stays_locked_whatever_x_forwarded_for_says(server):
    fail_until_locked(server, "heidi")
    for forged in ["10.9.8.7", "10.9.8.7, 127.0.0.1", "198.51.100.1, 10.0.0.3"]:
        response = post_login(server, "/login/", "heidi", PASSWORD, forwarded_for=forged)
        assert response.status_code == 429, forged
        assert "Too many failed attempts" in response.text


def test_a_staff_account_locked_on_the_site_login_is_locked_on_the_admin_login(server):
    fail_until_locked(server, "grace")
    response = post_login(server, "/admin/login/", "grace", PASSWORD, forwarded_for="10.9.8.7")
    assert response.status_code == 200 and "sessionid" not in response.cookies
    assert "Too many failed attempts" in response.text


def test_the_admin_login_locks_after_five_failures(server):
    fail_until_locked(server, "grace", path="/admin/login/")
    response = post_login(server, "/admin/login/", "grace", PASSWORD)
    assert "Too many failed attempts" in response.text and "sessionid" not in response.cookies
    assert post_login(server, "/login/", "grace", PASSWORD).status_code == 429


def test_a_trusted_proxys_x_forwarded_for_names_the_client(server):
    fail_until_locked(server, "heidi", source_address=TRUSTED_PROXY, forwarded_for="203.0.113.5")
    locked = post_login(server, "/login/", "heidi", PASSWORD, source_address=TRUSTED_PROXY, forwarded_for="203.0.113.5")
    assert locked.status_code == 429
    # Another client behind the same proxy is another address: the lock is not theirs.
    other = post_login(server, "/login/", "heidi", PASSWORD, source_address=TRUSTED_PROXY, forwarded_for="203.0.113.6")
    assert other.status_code == 302
