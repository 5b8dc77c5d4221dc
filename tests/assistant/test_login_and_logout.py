import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def employee():
    return get_user_model().objects.create_user("alice", password="correct horse battery")


def test_the_dashboard_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_an_employee_logs_in_and_sees_the_dashboard(client, employee):
    response = client.post(reverse("login"), {"username": "alice", "password": "correct horse battery"}, follow=True)
    assert response.status_code == 200
    assert b"Welcome, alice" in response.content
    assert b">Dashboard<" in response.content


def test_a_wrong_password_keeps_the_visitor_out(client, employee):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert b"didn't match" in response.content
    assert client.get(reverse("dashboard")).status_code == 302


def test_logout_ends_the_session(client, employee):
    client.force_login(employee)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302


def test_the_admin_link_is_shown_to_staff_only(client, employee):
    client.force_login(employee)
    assert b'href="/admin/"' not in client.get(reverse("dashboard")).content
    employee.is_staff = True
    employee.save()
    assert b'href="/admin/"' in client.get(reverse("dashboard")).content


def test_staff_create_accounts_in_the_admin(admin_client):
    response = admin_client.post(
        "/admin/auth/user/add/",
        {"username": "bob", "password1": "a long pass phrase 42", "password2": "a long pass phrase 42", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:2000]
    assert get_user_model().objects.get(username="bob").check_password("a long pass phrase 42")
