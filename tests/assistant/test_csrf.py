"""The ask form is protected against cross-site requests; the API, authenticated by bearer keys rather than
cookies, needs no CSRF token."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from assistant.services import do_create_api_key
from tests.assistant.conftest import ensure_model_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser():
    employee = get_user_model().objects.create_user("ines", password="a long pass phrase 42")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(employee)
    return browser


def test_asking_without_the_csrf_token_is_forbidden(browser):
    response = browser.post(reverse("ask_stream"), {"question": "Where is the fire extinguisher?"})
    assert response.status_code == 403


def test_asking_with_the_pages_csrf_token_is_accepted(browser):
    browser.get(reverse("ask"))
    token = browser.cookies["csrftoken"].value
    # An empty question is refused by the form, after the CSRF check passed.
    response = browser.post(reverse("ask_stream"), {"question": ""}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 400
    assert "question" in response.json()["errors"]


def test_the_api_takes_posts_without_a_csrf_token():
    ensure_model_catalog()
    employee = get_user_model().objects.create_user("jon", password="a long pass phrase 42")
    raw_key = do_create_api_key(employee)[1]
    response = Client(enforce_csrf_checks=True).post(
        "/v1/embeddings", {"model": "all-minilm-l6-v2", "input": "hello"}, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw_key}",
    )
    assert response.status_code == 200
    assert len(response.json()["data"][0]["embedding"]) == 384
