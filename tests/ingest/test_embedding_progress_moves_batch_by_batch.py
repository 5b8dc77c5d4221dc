"""Embedding a long transcript records the percent done after each batch of chunks, so the Sources page shows
"embedding" moving instead of 0% until the video is indexed."""
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ingest import services
from ingest.chunking import chunk_segments
from ingest.models import Job, Video

pytestmark = pytest.mark.django_db
SENTENCE = "Today we walk through the quarterly roadmap, the hiring plan and the budget for the new office."


def test_the_percent_rises_after_each_batch_up_to_the_end(monkeypatch):
    monkeypatch.setattr(services, "PROGRESS_INTERVAL_S", 0.0)  # record every batch, however fast this machine is
    segments = [{"start": 6.0 * index, "end": 6.0 * (index + 1), "text": f"{SENTENCE} Part {index}."} for index in range(400)]
    video = Video.objects.create(extractor="generic", video_id="long", url="https://media.example/long.mp3", segments=segments)
    job = Job.objects.create(video=video, stage=Job.CHUNKING)
    chunks = len(chunk_segments(segments))
    assert chunks > 2 * services.EMBEDDING_BATCH, "long enough for several batches"

    with CaptureQueriesContext(connection) as queries:
        assert services.do_embed_video(job.pk)

    percents = [
        float(match[1]) for query in queries.captured_queries
        if query["sql"].startswith('UPDATE "ingest_job"') and "owner" in query["sql"]
        for match in [re.search(r'"percent" = ([\d.]+(?:e[+-]\d+)?)', query["sql"])] if match
    ]
    during = [percent for percent in percents if 0 < percent < 100]
    assert len(during) >= 2 and during == sorted(during), percents
    assert Job.objects.get(pk=job.pk).stage == Job.INDEXED and video.chunks.count() == chunks
