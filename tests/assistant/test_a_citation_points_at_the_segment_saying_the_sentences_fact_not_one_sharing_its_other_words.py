"""A citation resolves to the segment saying the fact of the citing sentence (a number, a weekday, a month, a
name), not to one sharing more of its other words: "The sales office in Lisbon opens on September 1st" cites
"We are also opening a sales office in Lisbon in September", not "Registration opens on the 1st of August"."""
import pytest

from assistant.answering import cited_sources
from ingest.replica import rebuild_snapshot
from ingest.retrieval import retrieve
from tests.assistant.knowledge import indexed_video, segment_start

pytestmark = pytest.mark.django_db
SALES_PLANS = [
    "Welcome to the sales plans for next year.",
    "The marketing budget for next year is two million euros.",
    "We are also opening a sales office in Lisbon in September.",
    "It will start with six people and grow to fifteen by the end of next year.",
    "The annual sales conference moves from June to October this year.",
    "Registration opens on the 1st of August.",
]


def test_the_segment_saying_the_month_is_cited_not_the_one_saying_opens_on_the_first(knowledge):
    video = indexed_video(knowledge["source"], "plans", "Sales plans", SALES_PLANS)
    rebuild_snapshot()
    question = "When does the sales office in Lisbon open?"
    passages = retrieve(question)
    number = next(number for number, passage in enumerate(passages, start=1) if passage.video == video)

    [source] = [source for source in cited_sources(
        question, f"The sales office in Lisbon opens on September 1st [{number}].", passages) if source["n"] == number]

    assert source["second"] == segment_start(SALES_PLANS, "Lisbon in September")
