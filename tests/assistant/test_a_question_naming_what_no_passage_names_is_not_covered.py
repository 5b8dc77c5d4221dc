"""A question naming something (a capitalized word: Wi-Fi, Berlin) that no passage found for it says, nor its
video's title, is not covered: the passages are about something else, however close their words, and a model
given them attributes their facts to it ("The guest Wi-Fi password is 16 characters long"). A name said in a close
spelling (whisper writes names as it hears them) counts as said; names are not checked against passages in
another script, where they may be transliterated."""
import dataclasses

import pytest

from assistant.answering import NOT_COVERED_IN, GroundedAnswer, names_no_passage_says
from ingest.retrieval import retrieve

pytestmark = pytest.mark.django_db
SMOLLM2 = "smollm2-135m-instruct"


def test_a_question_about_an_office_no_talk_names_is_refused_without_generating(knowledge):
    question = "Where is the fire extinguisher of the Berlin office?"
    assert retrieve(question), "the kitchen briefing is found for its fire extinguisher"

    answer = GroundedAnswer(question, model_name=SMOLLM2)

    assert "".join(answer) == NOT_COVERED_IN["en"]
    assert answer.sources == [] and answer.completion_tokens == 0


def test_a_name_the_passages_say_in_a_close_spelling_is_answered(knowledge):
    for question in ("Where do I download the WireGuard client?", "Where do I download the Wyreguard client?"):
        answer = GroundedAnswer(question, model_name=SMOLLM2, max_tokens=16)
        "".join(answer)

        assert answer.stream is not None and answer.sources, question


def test_the_names_a_question_says_are_checked_against_passages_in_latin_script_only(knowledge):
    passages = retrieve("Where is the fire extinguisher of the Osaka office?")
    assert names_no_passage_says("Where is the fire extinguisher of the Osaka office?", passages) == []
    assert names_no_passage_says("Is the guest Wi-Fi in the Osaka kitchen?", passages) == ["Wi"]
    japanese = [dataclasses.replace(passage, segments=[{**segment, "text": "消火器は北の出口の横にあります。"}
                                                       for segment in passage.segments]) for passage in passages]
    assert names_no_passage_says("Where is the fire extinguisher of the Berlin office?", japanese) == []
