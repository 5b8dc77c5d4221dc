"""Helpers of the embedding-model switch tests: a knowledge base of a few hundred chunks stored as ingestion
stores them (chunked, embedded with the active model, written under the knowledge base's lock), and waiting on
a worker doing the switch."""
import time

import numpy as np
import psutil
from django.db import transaction

from inference.catalog import install_built_in_models
from inference.models import ModelEntry, ModelSource
from ingest.chunking import chunk_segments
from ingest.embedding import active_embedding_model, embed_texts
from ingest.models import Chunk, Video
from ingest.services import store_chunks
from tests.ingest.talks import LONG_TALK

OLD_MODEL, NEW_MODEL = "all-minilm-l6-v2", "embeddinggemma-300m"
SEGMENT_S = 5.0
# Generous: on a loaded 2-core machine the larger model embeds a few chunks a second.
TIMEOUT_S = 900


def install_catalog():
    """The built-in models, embedding models included (a flushing, transactional, test may have run before)."""
    install_built_in_models(ModelEntry, ModelSource)


def store_update(number):
    """The monthly update number `number`: the long talk, each sentence saying which update it is from."""
    sentences = [f"{sentence} This was update number {number}." for sentence in LONG_TALK]
    segments = [{"start": i * SEGMENT_S, "end": (i + 1) * SEGMENT_S, "text": text} for i, text in enumerate(sentences)]
    video = Video.objects.create(
        extractor="generic", video_id=f"update-{number}", url=f"https://media.example/update-{number}.mp3",
        title=f"Monthly update {number}", duration_s=len(sentences) * SEGMENT_S, segments=segments,
    )
    chunks = chunk_segments(segments, target_words=50, target_seconds=20.0, overlap_s=0.0)
    model_name = active_embedding_model()
    vectors = embed_texts([chunk.text for chunk in chunks], model_name)
    with transaction.atomic():
        store_chunks(video, chunks, vectors, embedded_with=model_name)
    return video


def store_updates(count):
    for number in range(count):
        store_update(number)
    return Chunk.objects.count()


def assert_every_chunk_embedded_by(model_name):
    chunks = list(Chunk.objects.order_by("id"))
    expected = embed_texts([chunk.text for chunk in chunks], model_name)  # [chunks, dims]
    stored = np.stack([chunk.vector_array for chunk in chunks])  # [chunks, dims]
    assert stored.shape == expected.shape
    np.testing.assert_allclose(stored, expected, atol=2e-3)


def wait_for(condition, what, timeout_s=TIMEOUT_S, interval_s=0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def kill_worker(process):
    worker = psutil.Process(process.pid)
    for child in worker.children(recursive=True):
        child.kill()
    worker.kill()
    process.wait(timeout=10)
