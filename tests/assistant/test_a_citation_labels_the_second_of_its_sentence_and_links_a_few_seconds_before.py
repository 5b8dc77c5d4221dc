"""A citation resolves to the segment that says the cited statement's fact, not the neighbour that shares the
question's words; its label says the second that segment begins, and its link opens LEAD_IN_S before it."""
from types import SimpleNamespace

import pytest
from django.template import Context, Template

from assistant.answering import LEAD_IN_S, cited_sources
from ingest.retrieval import retrieve
from tests.assistant.knowledge import indexed_video, segment_start
from tests.ingest.talks import LONG_TALK

pytestmark = pytest.mark.django_db
QUESTION = "When is the data on the shared servers copied to the backup server?"
ANSWER = "The main database is copied every night at three o'clock [1]."


@pytest.fixture
def update_talk(knowledge):
    video = indexed_video(knowledge["source"], "update", "Monthly engineering update", LONG_TALK,
                          url="https://www.youtube.com/watch?v=update00001")
    from ingest.replica import rebuild_snapshot

    rebuild_snapshot()
    return video


def test_the_cited_segment_is_the_sentence_stating_the_fact_not_its_neighbour(update_talk):
    passages = [passage for passage in retrieve(QUESTION) if passage.video == update_talk][:1]
    fact = segment_start(LONG_TALK, "every night at three")
    neighbour = segment_start(LONG_TALK, "stores data on the shared servers")
    assert neighbour == fact - 6 and passages[0].start_s <= neighbour, "the passage holds both sentences"

    [source] = cited_sources(QUESTION, ANSWER, passages)

    assert source["second"] == int(fact) == source["start_s"]
    assert source["url"] == f"https://www.youtube.com/watch?v=update00001&t={int(fact) - LEAD_IN_S}s"


def test_the_answer_page_labels_the_cited_second_and_links_the_lead_in(update_talk):
    passages = [passage for passage in retrieve(QUESTION) if passage.video == update_talk][:1]
    sources = cited_sources(QUESTION, ANSWER, passages)
    second = sources[0]["second"]
    message = SimpleNamespace(content=ANSWER, sources=sources)

    html = Template("{% load citations %}{{ message|with_citation_links }}").render(Context({"message": message}))

    assert f'title="Monthly engineering update at {second} s"' in html
    assert f'href="https://www.youtube.com/watch?v=update00001&amp;t={second - LEAD_IN_S}s"' in html
