"""Grounded answers: numbered sources in the prompt, citations resolved to the second that supports the
answer, and the knowledge base's own "not covered" instead of an invented answer."""
import pytest

from assistant.answering import LEAD_IN_S, NOT_COVERED, GroundedAnswer, link_at
from tests.assistant.knowledge import KITCHEN_SAFETY, segment_start

pytestmark = pytest.mark.django_db


def test_the_source_points_at_the_segment_that_supports_the_answer_not_the_chunk_start(knowledge):
    answer = GroundedAnswer("Where is the fire extinguisher in the kitchen?", max_tokens=24)
    assert "".join(answer).strip() and answer.text.strip()
    first = answer.sources[0]
    expected = segment_start(KITCHEN_SAFETY, "fire extinguisher")
    chunk_starts = set(knowledge["kitchen"].chunks.values_list("start_s", flat=True))
    assert expected not in chunk_starts, "the test needs the segment to lie inside a chunk"
    assert (first["video_id"], first["start_s"]) == (knowledge["kitchen"].pk, expected)
    assert first["second"] == int(expected) == first["start_s"]
    assert first["url"] == f"https://www.youtube.com/watch?v=kitchen0001&t={int(expected) - LEAD_IN_S}s"
    assert first["end_s"] > first["start_s"] and 0 < first["score"] <= 1


def test_the_prompt_numbers_each_retrieved_passage(knowledge):
    answer = GroundedAnswer("Where is the fire extinguisher in the kitchen?", max_tokens=1)
    system = answer.messages(answer.passages)[0]["content"]
    for number, passage in enumerate(answer.passages, start=1):
        assert f'[{number}] "{passage.video.title}"' in system
    assert answer.ttft_s is None and answer.passages


def test_an_uncovered_question_is_answered_as_not_covered_without_inventing(knowledge):
    answer = GroundedAnswer("What is the boiling point of liquid nitrogen on Mars?")
    assert "".join(answer) == NOT_COVERED
    assert answer.sources == [] and answer.ttft_s is not None


def test_youtube_links_carry_the_second_as_a_t_parameter_and_other_media_as_a_fragment():
    assert link_at("https://www.youtube.com/watch?v=abc", 42.7) == "https://www.youtube.com/watch?v=abc&t=42s"
    assert link_at("https://youtu.be/abc", 5) == "https://youtu.be/abc?t=5s"
    assert link_at("https://media.example/talk.mp3", 42.7) == "https://media.example/talk.mp3#t=42"
    assert link_at("https://media.example/talk.mp3#t=1", 9) == "https://media.example/talk.mp3#t=9"
