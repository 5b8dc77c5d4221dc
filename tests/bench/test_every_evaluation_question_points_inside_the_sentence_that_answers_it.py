"""The evaluation set of bench/evaluation.py is consistent: every question's second falls inside the spoken
sentence of its talk that states the question's facts, every direction has questions in both languages, and the
Japanese talk's subtitles read back as its sentences at their spoken times. Speech only (espeak-ng), no models."""
import pytest

from bench.evaluation import states
from bench.evaluation_set import QUESTIONS, TALKS, TALKS_BY_GUID, sentence_at, speak_talk, subtitles_vtt
from ingest.transcription import subtitle_segments


@pytest.fixture(scope="module")
def spans(tmp_path_factory):
    directory = tmp_path_factory.mktemp("talks")
    return {talk.guid: speak_talk(talk, directory / f"{talk.guid}.wav") for talk in TALKS}


@pytest.mark.parametrize("question", [q for q in QUESTIONS if q.talk], ids=lambda question: question.text)
def test_the_second_is_inside_the_sentence_that_states_the_facts(question, spans):
    talk = TALKS_BY_GUID[question.talk]
    index = sentence_at(talk, spans[talk.guid], question.second)
    assert index is not None, f"{question.second} s falls between sentences of {talk.guid}: {spans[talk.guid]}"
    assert question.facts and states(talk.sentences[index], question.facts), (talk.sentences[index], question.facts)


def test_unanswerable_questions_name_no_talk_second_or_fact():
    unanswerable = [question for question in QUESTIONS if question.talk is None]
    assert unanswerable and all(question.second is None and not question.facts for question in unanswerable)


def test_every_direction_has_questions_and_each_fact_is_asked_in_both_languages():
    directions = {question.direction for question in QUESTIONS}
    assert directions == {"EN->EN", "JA->EN", "EN->JA", "JA->JA", "EN->none", "JA->none"}
    asked = {}
    for question in QUESTIONS:
        asked.setdefault((question.talk, question.second), set()).add(question.language)
    assert all(languages == {"en", "ja"} for languages in asked.values()), asked


def test_talks_are_long_enough_and_japanese_readings_match_their_sentences():
    assert all(13 <= len(talk.sentences) <= 25 for talk in TALKS)
    japanese = [talk for talk in TALKS if talk.language == "ja"]
    assert japanese and all(talk.subtitled and len(talk.readings) == len(talk.sentences) for talk in japanese)


def test_subtitles_read_back_as_the_sentences_at_their_spoken_times(spans):
    for talk in (talk for talk in TALKS if talk.subtitled):
        segments = subtitle_segments(subtitles_vtt(talk, spans[talk.guid]))
        assert [segment["text"] for segment in segments] == list(talk.sentences)
        times = [time for segment in segments for time in (segment["start"], segment["end"])]
        assert times == pytest.approx([time for span in spans[talk.guid] for time in span], abs=0.01)
