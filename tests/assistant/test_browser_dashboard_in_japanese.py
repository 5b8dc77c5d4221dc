"""The interface in Japanese in a real browser (Debian's chromium through Playwright): a browser asking for
Japanese gets Japanese pages with Japanese dates, and an employee who picks 日本語 on the dashboard keeps it
in another browser that asks for English."""
import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect, sync_playwright

from assistant.models import Conversation
from tests.assistant.conftest import ensure_model_catalog, start_web_server
from tests.assistant.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.conftest import stop_process

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a long pass phrase 42"


@pytest.fixture
def web_server(tmp_path):
    ensure_model_catalog()
    yuki = get_user_model().objects.create_user("yuki", password=PASSWORD)
    Conversation.objects.create(user=yuki, title="バックアップはいつですか")
    Conversation.objects.filter(user=yuki).update(updated_at=dt.datetime(2026, 11, 3, 14, 5, tzinfo=dt.timezone.utc))
    process, base_url = start_web_server(tmp_path / "web.log")
    yield base_url
    stop_process(process)


@pytest.fixture
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def log_in(page, base_url):
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", "yuki")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def test_a_browser_asking_for_japanese_gets_the_dashboard_in_japanese(web_server, browser):
    page = browser.new_context(locale="ja-JP").new_page()
    page.goto(f"{web_server}/login/")
    expect(page.locator("h1")).to_have_text("ログイン")
    log_in(page, web_server)

    expect(page.locator("h1")).to_have_text("ようこそ、yuki さん")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.locator("header nav")).to_contain_text("ソース")
    expect(page.locator("#worth-watching h2")).to_have_text("見る価値のある動画")
    expect(page.get_by_text("2026/11/03 14:05")).to_be_visible()
    expect(page.locator("#question")).to_have_attribute("placeholder", "前回の全体会議で…について何と言っていましたか？")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "assistant-dashboard-ja.png"), full_page=True)


def test_the_language_picked_on_the_dashboard_follows_the_employee_into_an_english_browser(web_server, browser):
    page = browser.new_context(locale="en-US").new_page()
    log_in(page, web_server)
    expect(page.locator("h1")).to_have_text("Welcome, yuki")
    expect(page.get_by_text("11/03/2026 2:05 p.m.")).to_be_visible()

    page.select_option("#language-choice select", "ja")
    expect(page.locator("h1")).to_have_text("ようこそ、yuki さん")

    elsewhere = browser.new_context(locale="en-US").new_page()
    elsewhere.goto(f"{web_server}/login/")
    expect(elsewhere.locator("h1")).to_have_text("Log in")
    log_in(elsewhere, web_server)
    expect(elsewhere.locator("h1")).to_have_text("ようこそ、yuki さん")
    expect(elsewhere.locator("#language-choice select")).to_have_value("ja")
