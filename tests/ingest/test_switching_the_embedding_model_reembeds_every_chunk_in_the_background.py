"""Switching the embedding model re-embeds every chunk in a worker with its progress moving; until it is done,
questions are embedded with the old model and searched in the old index; chunks ingested meanwhile are not
lost; then questions move to the new model's index."""
import pytest

from ingest import reembedding, tasks
from ingest.models import Chunk, EmbeddingSetting, ReembeddedVector
from ingest.replica import searchable_index
from ingest.retrieval import retrieve
from tests.ingest.embedding_switch import (
    NEW_MODEL,
    OLD_MODEL,
    assert_every_chunk_embedded_by,
    install_catalog,
    store_update,
    store_updates,
    wait_for,
)
from tests.ingest.talks import ANSWER_WORDS, QUESTION

pytestmark = pytest.mark.django_db(transaction=True)


def answers_about_backups(passages):
    return bool(passages) and any(word in passages[0].text for word in ANSWER_WORDS)


def moved_on_from(setting):
    now = EmbeddingSetting.objects.get(pk=1)
    return now.percent != setting.percent or not now.is_switching


def test_switching_models_reembeds_all_chunks_while_questions_use_the_old_index(start_worker):
    install_catalog()
    store_updates(16)
    assert searchable_index()[0] == OLD_MODEL and answers_about_backups(retrieve(QUESTION))
    start_worker("embedding-node")

    assert reembedding.do_choose_embedding_model(NEW_MODEL)
    tasks.reembed_chunks.delay()
    wait_for(lambda: EmbeddingSetting.objects.get(pk=1).reembedded_through > 0, "the first batch to be stored")
    late_video = store_update(99)  # ingested during the switch, embedded by the old model
    progress, searched_during = [], []
    while (setting := EmbeddingSetting.objects.get(pk=1)).is_switching:
        model_name, index = searchable_index()
        searched_during.append((model_name, index.index.d, answers_about_backups(retrieve(QUESTION))))
        progress.append(setting.percent)
        wait_for(lambda: moved_on_from(setting), "progress", interval_s=0.1)

    assert setting.active_model == NEW_MODEL and setting.active_generation == 1 and not setting.error
    assert progress == sorted(progress) and len(set(progress)) >= 2 and 0 < progress[0] < 100
    # Every question asked during the switch used the old model and its 384-dimension index, and was answered.
    assert searched_during and set(searched_during) == {(OLD_MODEL, 384, True)}
    assert not ReembeddedVector.objects.exists()
    assert setting.reembedded_count == Chunk.objects.count() and late_video.chunks.exists()
    assert_every_chunk_embedded_by(NEW_MODEL)
    model_name, index = searchable_index()
    assert (model_name, index.index.d, index.size) == (NEW_MODEL, 768, Chunk.objects.count())
    assert answers_about_backups(retrieve(QUESTION))
