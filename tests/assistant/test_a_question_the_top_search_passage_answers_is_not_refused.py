"""Whether to answer is retrieval's decision: a question whose answer is in the passage `search` ranks first is
answered from that passage by `ask`, on a spoken talk ingested through the real pipeline (espeak-ng, whisper),
never refused, even when that passage is longer than the prompt's source budget."""
import json

import pytest
from django.core.management import call_command

from assistant.answering import NOT_COVERED, fit_passages
from ingest.retrieval import retrieve
from tests.assistant.knowledge import FIRE_TRAINING, indexed_video
from tests.assistant.conftest import ensure_model_catalog
from tests.ingest.conftest import (  # noqa: F401 (fixtures)
    admin_user, allow_private_urls, media_site, own_index_dir, tiny_whisper,
)
from tests.ingest.talks import QUESTION, long_talk

QUESTIONS = [QUESTION]


def last_json_line(*args):
    lines = []

    class Capture:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    call_command(*args, stdout=Capture())
    return json.loads("".join(lines).strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_ask_answers_from_the_passage_search_ranks_first(media_site, tiny_whisper, admin_user):
    ensure_model_catalog()
    media_site.add_episode(long_talk())
    call_command("ingest", media_site.feed_url, "--inline")

    for question in QUESTIONS:
        top = last_json_line("search", question, "--k", "3")[0]
        assert top["title"] == "Monthly engineering update"

        answer = last_json_line("ask", question, "--json", "--max-tokens", "40")

        assert answer["answer"].strip() and NOT_COVERED not in answer["answer"]
        assert "does not cover" not in answer["answer"].lower()
        [first] = [source for source in answer["sources"] if source["n"] == 1]
        assert first["video_id"] == top["video_id"]
        assert top["start_s"] <= first["second"] <= top["end_s"], "cited inside the passage search ranked first"


@pytest.mark.django_db
def test_a_first_passage_longer_than_the_source_budget_is_cut_around_the_answer_not_dropped(knowledge):
    training = indexed_video(knowledge["source"], "training", "Fire safety training", FIRE_TRAINING)
    from ingest.replica import rebuild_snapshot

    rebuild_snapshot()
    question = "How long did it take to empty the building during the last fire drill?"
    passages = retrieve(question)
    assert passages[0].video == training

    def words(passage):
        return len(passage.text.split())

    budget = words(passages[0]) // 3
    [first, *rest] = fit_passages(question, passages, budget, words)

    assert first.video == training and words(first) <= budget < words(passages[0])
    assert "empty in four minutes" in first.text
    assert sum(map(words, [first, *rest])) <= budget
