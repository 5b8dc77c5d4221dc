"""Embedding a video stores, with its chunks, a vector for each transcript segment by the active embedding model:
citations and search moments read them instead of embedding the transcript while someone waits."""
import numpy as np
import pytest

from ingest import services
from ingest.embedding import active_embedding_model, embed_texts, segment_texts
from ingest.models import Job, SegmentVectors, Video
from tests.ingest.talks import LONG_TALK

pytestmark = pytest.mark.django_db


def test_the_embedding_step_stores_one_vector_per_segment_in_transcript_order():
    segments = [{"start": 6.0 * index, "end": 6.0 * (index + 1), "text": f" {text}"} for index, text in enumerate(LONG_TALK)]
    video = Video.objects.create(extractor="generic", video_id="update", url="https://media.example/update.mp3",
                                 segments=segments)
    job = Job.objects.create(video=video, stage=Job.CHUNKING)

    assert services.do_embed_video(job.pk)

    stored = SegmentVectors.objects.get(video=video)
    assert stored.model == active_embedding_model()
    np.testing.assert_allclose(stored.array, embed_texts(segment_texts(segments)), atol=1e-5)
    assert stored.array.shape[0] == len(LONG_TALK)
