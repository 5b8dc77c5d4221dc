"""A sentence of an answer that states a number, time, weekday, month or name that neither the question nor
the passages given to the model say is dropped; one whose facts they say is kept, in whatever form."""
import dataclasses

import pytest

from assistant.answering import AnswerCheck, Facts, checked_sentences
from ingest.retrieval import retrieve

pytestmark = pytest.mark.django_db
QUESTION = "How much did revenue grow in the third quarter?"


def checked(question, answer, passages):
    check = AnswerCheck(question, passages)
    return "".join(checked_sentences([answer], check)), check.dropped


def test_an_invented_number_is_dropped_and_a_supported_one_kept(knowledge):
    passages = retrieve(QUESTION)
    sales = next(number for number, passage in enumerate(passages, start=1) if passage.video == knowledge["sales"])
    answer = f"Revenue grew by 18% [{sales}]. The team signed 25 new customers [{sales}]."

    text, dropped = checked(QUESTION, answer, passages)

    assert text == f"Revenue grew by 18% [{sales}]."  # the transcript says "eighteen percent"
    assert dropped == [f"The team signed 25 new customers [{sales}]."]


def test_a_name_the_passages_never_say_is_dropped_and_one_they_say_kept(knowledge):
    question = "Which market is the focus next quarter?"
    passages = retrieve(question)
    answer = "The focus is the European market, starting with Germany. Then the team moves on to France."

    text, dropped = checked(question, answer, passages)

    assert text.startswith("The focus is the European market, starting with Germany [")
    assert dropped == ["Then the team moves on to France."]


def test_a_capitalized_common_word_or_a_sentence_start_is_no_name():
    source = Facts("The build service will be down during the move.")
    assert Facts("During the move, the Build Service is down.").unsupported(source) == []
    assert Facts("Yes: Service stops.").unsupported(source) == []
    assert Facts("In the third quarter, Q3, the service stops.").unsupported(Facts("the third quarter")) == []


def test_a_latin_name_inside_a_japanese_sentence_is_checked():
    source = Facts("来客用Wi-Fiのパスワードは何ですか？ Our biggest project is moving the build farm to Osaka.")
    assert Facts("バックアップはAWSに保存されます。").unsupported(source) == ["AWS"]
    assert Facts("来客用のWi-Fiは大阪にあります。").unsupported(source) == []


def test_names_are_not_checked_against_passages_in_japanese(knowledge):
    """A name in Latin letters may be the transliteration of one in kana or kanji (佐藤 -> Sato)."""
    chef = "料理長は、京都のホテルで働いていた佐藤さんです。"
    japanese = [dataclasses.replace(passage, segments=[{**segment, "text": chef} for segment in passage.segments])
                for passage in retrieve("Where is the fire extinguisher?")]

    text, dropped = checked("Who is the head chef?", "The head chef is Sato from a hotel in Kyoto.", japanese)

    assert dropped == [] and text.startswith("The head chef is Sato from a hotel in Kyoto [1]")
