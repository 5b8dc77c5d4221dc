"""Retrieval: dense and BM25 fused by reciprocal rank, filters, adjacent chunks merged, a relevance
threshold and a token budget."""
import io
import json
from datetime import datetime, timezone

import pytest
from django.core.management import call_command

from assistant.answering import GroundedAnswer
from ingest.retrieval import (
    MAX_PASSAGE_WORDS, Filters, fit_to_budget, lexical_index, reciprocal_rank_fusion, retrieve,
)
from ingest.replica import rebuild_snapshot
from tests.assistant.knowledge import FIRE_TRAINING, indexed_video

pytestmark = pytest.mark.django_db


def test_the_passage_on_the_topic_comes_first(knowledge):
    passages = retrieve("Where is the fire extinguisher in the kitchen?")
    assert passages[0].video == knowledge["kitchen"]
    assert "fire extinguisher" in passages[0].text


def test_bm25_finds_a_rare_exact_word(knowledge):
    chunk_ids = lexical_index.search("WireGuard", None, 5)
    assert chunk_ids
    assert {knowledge["vpn"].pk} == set(knowledge["vpn"].chunks.filter(pk__in=chunk_ids).values_list("video", flat=True))


def test_a_chunk_found_by_both_retrievers_outranks_one_found_by_either():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 4]])
    assert max(fused, key=fused.get) == 3
    assert fused[1] > fused[4]


def test_a_question_off_every_topic_retrieves_nothing(knowledge):
    assert retrieve("What is the boiling point of liquid nitrogen on Mars?") == []


def test_the_source_filter_keeps_only_that_source(knowledge):
    passages = retrieve("How do I set up the VPN?", Filters(source_id=knowledge["source"].pk))
    assert all(passage.video != knowledge["vpn"] for passage in passages)
    assert retrieve("How do I set up the VPN?", Filters(source_id=knowledge["other"].pk))[0].video == knowledge["vpn"]


def test_the_date_filter_keeps_only_videos_published_in_range(knowledge):
    october = Filters(published_after=datetime(2026, 9, 15, tzinfo=timezone.utc))
    passages = retrieve("How much did revenue grow, and where is the fire extinguisher?", october)
    assert passages and {passage.video for passage in passages} == {knowledge["sales"]}


def test_adjacent_chunks_of_a_video_become_one_passage_without_repeating_segments(knowledge):
    passages = retrieve("kitchen safety briefing: fire extinguisher, grease fire, knives and first aid kit")
    kitchen = [passage for passage in passages if passage.video == knowledge["kitchen"]]
    merged = max(kitchen, key=lambda passage: len(passage.chunk_positions))
    assert len(merged.chunk_positions) > 1
    assert merged.chunk_positions == list(range(merged.chunk_positions[0], merged.chunk_positions[-1] + 1))
    starts = [segment["start"] for segment in merged.segments]
    assert starts == sorted(set(starts))


def test_a_video_on_the_topic_from_end_to_end_comes_in_passages_that_fit_the_source_budget(knowledge):
    fire_training = indexed_video(knowledge["source"], "fire", "Fire safety training", FIRE_TRAINING)
    rebuild_snapshot()
    question = "What should we do when the fire alarm goes off?"
    assert all(len(passage.text.split()) <= MAX_PASSAGE_WORDS for passage in retrieve(question))
    assert fire_training in [passage.video for passage in GroundedAnswer(question, max_tokens=1).passages]


def test_the_budget_keeps_the_best_passages_that_fit(knowledge):
    passages = retrieve("kitchen fire extinguisher and revenue growth and VPN client")
    assert len(passages) >= 2
    words = lambda passage: len(passage.text.split())  # noqa: E731
    kept = fit_to_budget(passages, words(passages[0]), words)
    assert kept == [passages[0]]
    assert fit_to_budget(passages, 0, words) == []


def test_the_search_command_shows_the_passages_of_the_assistants_retrieval_in_the_same_order(knowledge):
    question = "Where is the fire extinguisher in the kitchen, and how do I set up the VPN?"
    output = io.StringIO()
    call_command("search", question, "--k", "8", "--json", stdout=output)
    shown = [(found["video_id"], found["start_s"], found["end_s"]) for found in json.loads(output.getvalue().splitlines()[-1])]

    retrieved = [(passage.video.pk, passage.start_s, passage.end_s) for passage in retrieve(question, limit=8)]
    answered = [(passage.video.pk, passage.start_s, passage.end_s) for passage in GroundedAnswer(question, max_tokens=1).passages]
    assert len(shown) >= 2 and shown == retrieved
    assert answered and answered == [passage for passage in shown if passage in answered]
