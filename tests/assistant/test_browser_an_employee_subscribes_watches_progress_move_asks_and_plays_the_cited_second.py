"""An employee's day in a real browser (Debian's chromium through Playwright): log in, subscribe to a podcast feed
of a spoken talk on the Sources page, watch the percentage move without reloading, ask on the Ask page, and play
the cited second in the player beside the answer. Screenshots go to test-artifacts/."""
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect, sync_playwright

from ingest.models import Video
from tests.assistant.browser import CHROMIUM, CHROMIUM_ARGS, LAPTOP, RangeMediaSite, played_second, screenshot
from tests.assistant.conftest import ensure_model_catalog, start_web_server
from tests.conftest import stop_process
from tests.ingest.talks import QUESTION, long_talk

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a long pass phrase 42"
INGESTION_TIMEOUT_S = 900  # the shared 2-core machine can be slow; this is a deadline, not a measurement
ANSWER_TIMEOUT_MS = 600_000
# The link opens a few seconds before the sentence at most.
LEAD_IN_S = 5
# The media site lives on 127.0.0.1 and a tiny whisper keeps transcription short.
SERVER_ENV = {"KOTATSU_ALLOW_PRIVATE_URLS": "1", "INGEST_WHISPER_MODEL": "whisper-tiny.en"}
PERCENT = re.compile(r"(\w+) (\d+)%")


@pytest.fixture
def feed(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    site = RangeMediaSite(root).start()
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
        yield browser.new_context(viewport=LAPTOP, locale="en-US").new_page()
        browser.close()


def in_django_thread(read):
    """Run a database read in a thread of its own: Playwright runs an event loop in this one, where Django
    refuses queries."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(read).result()


def second_saying(phrase):
    """Where the talk says `phrase`, in the transcript ingestion made."""
    return next(second for second, text in transcript() if phrase in text.lower())


def segment_starts():
    return [second for second, _ in transcript()]


def transcript():
    return [(int(segment["start"]), segment["text"]) for segment in Video.objects.get(video_id="talk-update").segments]


def watch_progress(page):
    """The job labels the Sources page shows until the talk is indexed, read every quarter second."""
    seen = []
    deadline = time.monotonic() + INGESTION_TIMEOUT_S
    while page.locator("#my-sources .source-count").inner_text() != "1/1 indexed":
        assert time.monotonic() < deadline, f"not indexed within {INGESTION_TIMEOUT_S} s; progress seen: {seen}"
        labels = page.locator("#my-sources .job-label").all_inner_texts()
        if labels and (not seen or labels[0] != seen[-1]):
            seen.append(labels[0])
            if PERCENT.search(labels[0]) and 0 < int(PERCENT.search(labels[0])[2]) < 100:
                screenshot(page, "sources-progress-moving")
        time.sleep(0.25)
    return seen


def test_an_employee_subscribes_watches_progress_move_asks_and_plays_the_cited_second(feed, web_server, start_worker, page):
    started = time.monotonic()
    start_worker("browser-node", **SERVER_ENV)
    page.goto(f"{web_server}/login/")
    page.fill("#id_username", "nora")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Welcome, nora")

    page.get_by_role("link", name="Sources", exact=True).click()
    page.fill("#my-sources input[name=url]", feed.feed_url)
    page.click("#my-sources button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Subscribed to")
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    seen = watch_progress(page)
    print(f"indexed after {time.monotonic() - started:.0f} s; progress seen: {seen}")
    assert page.evaluate("window.loadedOnce === true"), "the progress moved without a reload"
    percents = [(match[1], int(match[2])) for match in map(PERCENT.search, seen) if match]
    assert any(0 < percent < 100 for _, percent in percents), f"a percentage between 0 and 100: {seen}"
    assert len(set(percents)) >= 3, f"the percentage moved: {seen}"
    progress = page.locator("#my-sources .source-progress")
    assert progress.get_attribute("value") == progress.get_attribute("max") == "1"
    expect(page.locator("#source-progress")).not_to_have_attribute("data-refresh", re.compile(".*"))

    page.get_by_role("link", name="Ask", exact=True).click()
    page.fill("#question", QUESTION)
    page.press("#question", "Enter")
    expect(page.locator(".thread .question")).to_have_text(QUESTION)
    expect(page.locator("#ask-status")).to_have_text("Answering…", timeout=ANSWER_TIMEOUT_MS)
    streamed_so_far = page.locator("#streamed-answer .answer-text").inner_text()
    expect(page.locator("#ask-status")).to_contain_text("Answered", timeout=ANSWER_TIMEOUT_MS)
    print(f"answered after {time.monotonic() - started:.0f} s")
    answer = page.locator("#streamed-answer")
    text = answer.locator(".answer-text").inner_text()
    assert text.strip() and text.startswith(streamed_so_far.strip())
    expect(page).to_have_url(re.compile(r"/ask/\d+/$"))
    expect(page.locator("#conversation-list a[aria-current=page]")).to_have_text(QUESTION)

    # The source the answer cites first (the first listed if its text cites none): its label is the second a
    # segment of the talk begins, and the player beside the answer opens a few seconds before it.
    cited = answer.locator(".answer-text a.citation").first
    number = cited.inner_text().strip("[]") if cited.count() else "1"
    source = answer.locator(f'.sources li[data-n="{number}"]')
    said_at = int(re.fullmatch(r"at (\d+) s", source.locator(".at").inner_text().strip())[1])
    assert said_at in in_django_thread(segment_starts)
    opens_at = int(source.get_attribute("data-second"))
    assert said_at - LEAD_IN_S <= opens_at <= said_at
    (cited if cited.count() else source.locator("a.source-link")).click()
    expect(answer.locator(".player audio")).to_have_attribute("src", re.compile(rf"/talk-update\.mp3#t={opens_at}$"))
    assert abs(played_second(page, "#streamed-answer") - opens_at) < 1.0
    print(f"answer: {text!r}; cites [{number}] at {said_at} s (the backup sentence begins at "
          f"{in_django_thread(lambda: second_saying('backup server'))} s), the player opened at {opens_at} s")
    assert len(page.context.pages) == 1, "the talk plays beside the answer, not in a new tab"
    screenshot(page, "ask-answer-playing-the-cited-second")
