"""After generation every citation [n] names a passage the model was given: a number that was not given is
dropped, and a sentence left without a citation is cited to the passage whose segments support it best."""
import re

import pytest

from assistant.answering import AnswerCheck, checked_sentences
from ingest.retrieval import retrieve

pytestmark = pytest.mark.django_db
QUESTION = "Where is the fire extinguisher and where is the first aid kit?"


def checked_answer(question, answer, passages):
    """The answer as it is sent once checked (here all at once, as one delta), and its sources."""
    check = AnswerCheck(question, passages)
    text = "".join(checked_sentences([answer], check))
    return text, check.evidence.sources(text)


def test_a_citation_of_a_passage_that_was_not_given_is_replaced_by_the_one_that_supports_the_sentence(knowledge):
    passages = retrieve(QUESTION)
    kitchen = next(number for number, passage in enumerate(passages, start=1) if passage.video == knowledge["kitchen"])
    answer = ("The fire extinguisher is mounted next to the north exit door [7]. "
              f"The first aid kit sits in the white cabinet [{kitchen}] [0].")

    text, sources = checked_answer(QUESTION, answer, passages)

    assert "[7]" not in text and "[0]" not in text
    assert text == (f"The fire extinguisher is mounted next to the north exit door [{kitchen}]. "
                    f"The first aid kit sits in the white cabinet [{kitchen}].")
    assert [source["n"] for source in sources] == list(range(1, len(passages) + 1))


def test_an_uncited_sentence_gets_the_citation_of_its_passage_and_valid_ones_stay_where_they_are(knowledge):
    passages = retrieve("How much did revenue grow, and where is the first aid kit?")
    numbers = {passage.video.video_id: number for number, passage in enumerate(passages, start=1)}
    answer = (f"Revenue grew by eighteen percent [{numbers['sales']}] in the third quarter. "
              "The first aid kit is in the white cabinet beside the refrigerator.")

    text, _ = checked_answer("How much did revenue grow, and where is the first aid kit?", answer, passages)

    first, second = re.split(r"(?<=\.) ", text)
    assert first == f"Revenue grew by eighteen percent [{numbers['sales']}] in the third quarter."
    assert second == f"The first aid kit is in the white cabinet beside the refrigerator [{numbers['kitchen']}]."
