"""A worker killed in the middle of re-embedding for a switch of model: the restarted worker takes the job back
and goes on after the last batch stored, and the switch completes once."""
import pytest

from ingest import tasks
from ingest.models import Chunk, EmbeddingSetting
from ingest.reembedding import do_choose_embedding_model, do_reembed_chunks
from tests.ingest.embedding_switch import (
    NEW_MODEL,
    assert_every_chunk_embedded_by,
    install_catalog,
    kill_worker,
    store_updates,
    wait_for,
)

# Minutes here (a worker loads EmbeddingGemma twice and re-embeds a talk): `make test-slow` runs it.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def setting():
    return EmbeddingSetting.objects.get(pk=1)


def test_a_killed_reembedding_resumes_after_its_last_batch_and_switches_once(start_worker):
    install_catalog()
    chunk_count = store_updates(24)
    worker = start_worker("embedding-node")
    assert do_choose_embedding_model(NEW_MODEL)
    tasks.reembed_chunks.delay()

    interrupted = wait_for(lambda: (row := setting()).reembedded_through > 0 and row, "a first batch stored")
    assert interrupted.percent < 100
    kill_worker(worker)
    interrupted = setting()
    assert interrupted.is_switching and interrupted.owner.startswith("embedding-node:")
    assert interrupted.reembedded_through > 0 and interrupted.reembedded_count < chunk_count

    start_worker("embedding-node")
    marks = []
    while (row := setting()).is_switching:
        marks.append(row.reembedded_through)
        wait_for(lambda: (now := setting()).reembedded_through != row.reembedded_through or not now.is_switching, "progress")
    # Taken back where it stopped: never below the mark of the killed worker, never from the start.
    assert marks and min(marks) >= interrupted.reembedded_through

    assert not do_reembed_chunks()  # a duplicate message after the end finds nothing to do
    done = setting()
    assert (done.active_model, done.active_generation, done.target_generation) == (NEW_MODEL, 1, 1)
    assert done.reembedded_count == chunk_count == Chunk.objects.count()
    assert_every_chunk_embedded_by(NEW_MODEL)
