"""The pages an employee uses daily in chromium, on a laptop and on a phone: nothing runs off the side of the
screen, a citation plays its talk from the cited second in the player beside the answer, and a search moment plays
where the words were said. Screenshots of every page at both sizes go to test-artifacts/."""
import pytest
from django.urls import reverse
from playwright.sync_api import expect, sync_playwright

from assistant.models import Conversation, Message
from tests.assistant.browser import (
    CHROMIUM, CHROMIUM_ARGS, LAPTOP, PHONE, RangeMediaSite, played_second, screenshot, sideways_overflow,
)
from tests.ingest.media_site import speak
from tests.ingest.talks import LONG_TALK

pytestmark = pytest.mark.django_db
PASSWORD = "a long pass phrase 42"  # served_knowledge's employee, erin
CITED_SECOND = 31


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    """A spoken talk served over HTTP, for the player."""
    root = tmp_path_factory.mktemp("media")
    speak(" ".join(LONG_TALK), root / "talk-update.mp3")
    site = RangeMediaSite(root).start()
    yield site.url("talk-update.mp3")
    site.stop()


@pytest.fixture(scope="module")
def conversation(served_knowledge, talk, django_db_blocker):
    with django_db_blocker.unblock():
        thread = Conversation.objects.create(user=served_knowledge["employee"], title="When is the database backed up?")
        Message.objects.create(conversation=thread, role=Message.USER, content=thread.title)
        Message.objects.create(
            conversation=thread, role=Message.ASSISTANT,
            content="The main database is copied to the backup server every night at three o'clock [1]. "
                    "The kitchen briefing says where the fire extinguisher hangs [2].",
            sources=[
                {"n": 1, "video_id": 0, "title": "Monthly engineering update", "url": f"{talk}#t={CITED_SECOND}",
                 "start_s": CITED_SECOND + 3.2, "end_s": CITED_SECOND + 8.0, "score": 0.71},
                {"n": 2, "video_id": served_knowledge["kitchen"].pk, "title": "Kitchen safety briefing",
                 "url": "https://www.youtube.com/watch?v=kitchen0001&t=36s", "start_s": 36.0, "end_s": 42.0, "score": 0.4},
            ],
        )
    return thread


@pytest.fixture
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def logged_in(browser, base_url, viewport):
    page = browser.new_context(viewport=viewport, locale="en-US").new_page()
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", "erin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Welcome, erin")
    return page


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_every_page_fits_the_screen(served_knowledge, conversation, browser, size):
    base_url = served_knowledge["base_url"]
    page = logged_in(browser, base_url, LAPTOP if size == "laptop" else PHONE)
    pages = {
        "dashboard": "/",
        "ask": reverse("conversation", args=[conversation.pk]),
        "search": f"{reverse('search')}?q=fire+extinguisher",
        "sources": reverse("sources"),
    }
    for name, path in pages.items():
        page.goto(f"{base_url}{path}")
        expect(page.locator("h1")).to_be_visible()
        assert sideways_overflow(page) <= 0, f"the {name} page runs off the side of a {size} screen"
        screenshot(page, f"page-{name}-{size}")


def test_a_citation_plays_the_talk_from_the_cited_second_beside_the_answer(served_knowledge, conversation, talk, browser):
    page = logged_in(browser, served_knowledge["base_url"], LAPTOP)
    page.goto(f"{served_knowledge['base_url']}{reverse('conversation', args=[conversation.pk])}")
    answer = page.locator(".answer").first
    expect(answer.locator(".player")).to_be_hidden()

    answer.locator("a.citation", has_text="[1]").click()

    expect(answer.locator(".player audio")).to_have_attribute("src", f"{talk}#t={CITED_SECOND}")
    assert abs(played_second(page, ".answer") - CITED_SECOND) < 1.0
    expect(answer.locator(".sources li.playing")).to_contain_text("Monthly engineering update")
    assert len(page.context.pages) == 1, "the player opened in the page, not in a new tab"
    screenshot(page, "ask-player-audio")

    answer.locator(".sources a.source-link", has_text="Kitchen safety briefing").click()
    expect(answer.locator(".player iframe")).to_have_attribute(
        "src", "https://www.youtube-nocookie.com/embed/kitchen0001?start=36&autoplay=1&rel=0"
    )
    expect(answer.locator(".player audio")).to_have_count(0)


def test_a_search_moment_plays_where_the_words_were_said(served_knowledge, conversation, browser):
    page = logged_in(browser, served_knowledge["base_url"], PHONE)
    page.goto(f"{served_knowledge['base_url']}{reverse('search')}")
    page.fill("#search-query", "fire extinguisher")
    page.press("#search-query", "Enter")
    moment = page.locator(".moment").first
    expect(moment.locator(".said mark").first).to_have_text("fire")

    moment.locator("a.moment-link").click()

    expect(moment.locator(".player iframe")).to_have_attribute("src", moment.get_attribute("data-player-src"))
    assert moment.get_attribute("data-player-src").startswith("https://www.youtube-nocookie.com/embed/kitchen0001?start=")
    screenshot(page, "search-moment-phone")
