"""An employee's day in a real browser (Debian's chromium through Playwright): log in, subscribe to a feed,
watch the progress bar finish, ask, and follow the citation to the second where the answer is said."""
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect, sync_playwright

from ingest.models import Video
from tests.assistant.conftest import ensure_model_catalog, start_web_server
from tests.conftest import PROJECT_DIR, stop_process
from tests.ingest.media_site import MediaSite
from tests.ingest.talks import QUESTION, long_talk

pytestmark = pytest.mark.django_db(transaction=True)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PASSWORD = "a long pass phrase 42"
INGESTION_TIMEOUT_MS = 300_000
ANSWER_TIMEOUT_MS = 180_000
ARTIFACTS = PROJECT_DIR / "test-artifacts"
# The media site lives on 127.0.0.1 and a tiny whisper keeps transcription short.
SERVER_ENV = {"KOTATSU_ALLOW_PRIVATE_URLS": "1", "INGEST_WHISPER_MODEL": "whisper-tiny.en"}


@pytest.fixture
def feed(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    site = MediaSite(root).start()
    site.add_episode(long_talk())
    yield site
    site.stop()


@pytest.fixture
def web_server(tmp_path):
    ensure_model_catalog()
    get_user_model().objects.create_user("nora", password=PASSWORD)
    process, base_url = start_web_server(tmp_path / "web.log", **SERVER_ENV)
    yield base_url
    stop_process(process)


@pytest.fixture
def page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page()
        browser.close()


def expected_citation_second():
    """Where the talk says the database is copied to the backup server, in the transcript ingestion made.
    Read in a thread of its own: Playwright runs an event loop in this one, where Django refuses queries."""

    def read():
        video = Video.objects.get(video_id="talk-update")
        return next(int(segment["start"]) for segment in video.segments if "backup server" in segment["text"].lower())

    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(read).result()


def test_an_employee_subscribes_watches_ingestion_finish_and_follows_a_cited_second(
    feed, web_server, start_worker, page
):
    started = time.monotonic()
    start_worker("browser-node", **SERVER_ENV)
    page.goto(f"{web_server}/login/")
    page.fill("#id_username", "nora")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Welcome, nora")

    page.fill("#my-sources input[name=url]", feed.feed_url)
    page.click("#my-sources button[type=submit]")
    page.goto(f"{web_server}/")
    progress = page.locator("#my-sources .source-progress")
    expect(progress).to_have_count(1)
    # The section refreshes itself while ingesting; the bar is full once the talk is indexed.
    expect(page.locator("#my-sources .source-count")).to_have_text("1/1 indexed", timeout=INGESTION_TIMEOUT_MS)
    assert progress.get_attribute("value") == progress.get_attribute("max") == "1"
    print(f"indexed after {time.monotonic() - started:.0f} s")

    page.fill("#question", QUESTION)
    page.click("#ask-button")
    expect(page.locator("#ask-status")).to_have_text("Answering…", timeout=ANSWER_TIMEOUT_MS)
    streamed_so_far = page.locator("#streamed-answer .answer-text").inner_text()
    expect(page.locator("#ask-status")).to_contain_text("Answered", timeout=ANSWER_TIMEOUT_MS)
    print(f"answered after {time.monotonic() - started:.0f} s")
    answer = page.locator("#streamed-answer .answer-text").inner_text()
    assert answer.strip() and answer.startswith(streamed_so_far.strip())

    citation = page.locator("#streamed-answer ol.sources a").first
    expect(citation).to_have_attribute("href", re.compile(rf"/talk-update\.mp3#t={expected_citation_second()}$"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "assistant-dashboard.png"), full_page=True)
