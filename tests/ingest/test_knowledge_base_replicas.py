"""Every node's FAISS replica follows the vectors stored in the database, incrementally."""
import numpy as np
import pytest
from django.core.management import call_command
from django.db import transaction

from ingest import replica, services
from ingest.chunking import TimedChunk
from ingest.knowledge_index import KnowledgeIndex
from ingest.models import Chunk, Video

pytestmark = pytest.mark.django_db
DIM = 8


def add_video(name, vectors):
    video = Video.objects.create(extractor="Generic", video_id=name, url=f"https://example.com/{name}.mp3", title=name)
    chunks = [TimedChunk(10.0 * i, 10.0 * i + 12, f"{name} part {i}", [[10.0 * i, 10.0 * i + 12]]) for i in range(len(vectors))]
    with transaction.atomic():
        services.store_chunks(video, chunks, vectors)
    return video


def unit_vectors(count, seed):
    vectors = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def nearest_titles(vector, k=3):
    _, ids = replica.current_replica().search(vector, k)
    return [Chunk.objects.get(pk=chunk_id).video.title for chunk_id in ids[0] if chunk_id >= 0]


def test_a_new_video_is_found_and_a_removed_video_is_gone():
    add_video("first", unit_vectors(3, seed=1))
    second_vectors = unit_vectors(4, seed=2)
    second = add_video("second", second_vectors)
    assert nearest_titles(second_vectors[2])[0] == "second"

    services.do_remove_video(second)
    assert replica.current_replica().size == 3
    assert "second" not in nearest_titles(second_vectors[2])


def test_another_replica_catches_up_with_additions_and_removals_only():
    other_node = KnowledgeIndex()
    first = add_video("first", unit_vectors(3, seed=1))
    replica.catch_up(other_node)
    assert other_node.size == 3
    mark = other_node.chunk_mark

    add_video("second", unit_vectors(2, seed=2))
    services.do_remove_video(first)
    replica.catch_up(other_node)
    assert other_node.size == 2 and other_node.chunk_mark > mark


def test_re_embedding_a_video_replaces_its_vectors():
    vectors = unit_vectors(3, seed=1)
    video = add_video("again", vectors)
    replica.current_replica()
    with transaction.atomic():
        services.store_chunks(video, [TimedChunk(0.0, 5.0, "new", [[0.0, 5.0]])], vectors[:1])
    assert replica.current_replica().size == 1 and Chunk.objects.count() == 1


def test_past_the_threshold_the_replica_switches_to_an_ivf_index(settings):
    settings.INGEST_EXACT_INDEX_LIMIT = 500
    vectors = unit_vectors(800, seed=3)
    add_video("big", vectors)
    index = replica.current_replica()
    assert not index.is_exact and index.size == 800
    assert nearest_titles(vectors[42], k=1) == ["big"]


def test_reindex_rebuilds_the_snapshot_from_the_database(settings, capsys):
    add_video("first", unit_vectors(5, seed=1))
    call_command("reindex")
    assert capsys.readouterr().out.strip() == "indexed 5 chunks"
    assert KnowledgeIndex.load(settings.INDEX_DIR / replica.SNAPSHOT_NAME).size == 5
