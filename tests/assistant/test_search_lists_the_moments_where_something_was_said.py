"""The Search page: "find where someone said X". Each match is a moment of a video (its title, the second, the
words said with the searched ones marked) with a link and an embedded player opening that second, found by the
one retrieval that answers use."""
import pytest
from django.urls import reverse

from assistant.answering import LEAD_IN_S, link_at
from ingest.retrieval import retrieve
from tests.assistant.knowledge import KITCHEN_SAFETY, SALES_REVIEW, segment_start

pytestmark = pytest.mark.django_db


@pytest.fixture
def employee(client, django_user_model):
    user = django_user_model.objects.create_user("mio", password="a long pass phrase 42")
    client.force_login(user)
    return user


def moments_section(client, **query):
    page = client.get(reverse("search"), query).content.decode()
    return page[page.index('id="moments"'):]


def test_a_search_lists_the_moment_with_its_second_words_link_and_player(client, employee, knowledge):
    second = int(segment_start(KITCHEN_SAFETY, "fire extinguisher is mounted"))

    section = moments_section(client, q="fire extinguisher")

    first = section[section.index('<li class="moment"'):section.index("</li>")]
    assert "Kitchen safety briefing" in first and f"at {second} s" in first
    assert "The <mark>fire</mark> <mark>extinguisher</mark> is mounted next to the north exit door" in first
    link = link_at(knowledge["kitchen"].url, second - LEAD_IN_S)  # the link a citation of this second has
    assert f'href="{link.replace("&", "&amp;")}"' in first
    assert 'data-player="youtube" data-player-src="https://www.youtube-nocookie.com/embed/kitchen0001?start=' in first


def test_the_moments_are_the_passages_of_the_one_retrieval_in_its_order(client, employee, knowledge):
    query = "how many enterprise customers did the subscription plan bring?"
    section = moments_section(client, q=query)

    titles = [passage.video.title for passage in retrieve(query, limit=10)]
    shown = [title for title in titles if f'<span class="moment-title">{title}</span>' in section]
    assert titles and shown == titles
    second = int(segment_start(SALES_REVIEW, "four hundred enterprise customers"))
    assert f'data-player="audio" data-player-src="{link_at(knowledge["sales"].url, second - LEAD_IN_S)}"' in section


def test_a_search_can_be_kept_to_one_source(client, employee, knowledge):
    section = moments_section(client, q="fire extinguisher", source=knowledge["other"].pk)
    assert "Kitchen safety briefing" not in section


def test_words_nobody_said_find_no_moment(client, employee, knowledge):
    section = moments_section(client, q="quantum chromodynamics lattice gauge theory")
    assert '<li class="moment"' not in section and "Nobody said that" in section


def test_a_bad_source_is_named_not_searched(client, employee, knowledge):
    page = client.get(reverse("search"), {"q": "fire", "source": "kitchen"}).content.decode()
    assert 'class="error">source: Enter a whole number.' in page and 'id="moments"' not in page


def test_the_search_page_is_for_employees_only(client, knowledge):
    assert client.get(reverse("search"), {"q": "fire"}).status_code == 302
