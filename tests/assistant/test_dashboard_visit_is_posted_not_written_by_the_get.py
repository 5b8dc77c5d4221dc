"""Showing the dashboard writes nothing: the page posts the visit that "worth watching" counts from, and a
reload within the visit keeps where "new" begins."""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from assistant.models import DashboardVisit

pytestmark = pytest.mark.django_db


@pytest.fixture
def employee_client(client):
    employee = get_user_model().objects.create_user("mika", password="a long pass phrase 42")
    client.force_login(employee)
    return client, employee


def test_a_get_of_the_dashboard_writes_no_visit(employee_client):
    client, _ = employee_client
    page = client.get(reverse("dashboard"))
    assert page.status_code == 200
    assert reverse("record-dashboard-visit") in page.content.decode(), "the page posts its own visit"
    assert not DashboardVisit.objects.exists()


def test_the_posted_visit_is_where_new_begins_at_the_next_visit(employee_client):
    client, employee = employee_client
    assert client.post(reverse("record-dashboard-visit")).status_code == 204
    first_seen = DashboardVisit.objects.get(user=employee).last_seen_at
    DashboardVisit.objects.filter(user=employee).update(last_seen_at=first_seen - DashboardVisit.VISIT_GAP * 2)

    page = client.get(reverse("dashboard"))

    assert page.context["since"] == first_seen - DashboardVisit.VISIT_GAP * 2
    assert DashboardVisit.objects.get(user=employee).previous_visit_at is None, "the GET changed nothing"


def test_the_visit_is_recorded_only_by_a_post(employee_client):
    client, _ = employee_client
    assert client.get(reverse("record-dashboard-visit")).status_code == 405
    assert not DashboardVisit.objects.exists()
