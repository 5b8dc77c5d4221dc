"""Streaming with the fact check: each kept sentence goes out once, as soon as the next one begins; a dropped
one is never sent, not even in part, and the spacing before it is not doubled."""
import pytest

from assistant.answering import AnswerCheck, checked_sentences
from ingest.retrieval import retrieve

pytestmark = pytest.mark.django_db
QUESTION = "How much did revenue grow, and how many enterprise customers came?"


def test_each_kept_sentence_is_sent_once_and_a_dropped_one_never(knowledge):
    passages = retrieve(QUESTION)
    sales = next(number for number, passage in enumerate(passages, start=1) if passage.video == knowledge["sales"])
    generated = (f"Revenue grew by eighteen percent [{sales}]. Revenue grew by 30 percent in March [{sales}]. "
                 f"Revenue grew by eighteen percent [{sales}]. The plan brought 400 enterprise customers [{sales}].")
    deltas = [generated[start:start + 4] for start in range(0, len(generated), 4)]
    check = AnswerCheck(QUESTION, passages)

    sent = list(checked_sentences(iter(deltas), check))

    assert sent == [f"Revenue grew by eighteen percent [{sales}].",
                    f" The plan brought 400 enterprise customers [{sales}]."]
    assert "".join(sent) == check.text and "30" not in check.text
    assert check.dropped == [f"Revenue grew by 30 percent in March [{sales}]."]
