"""A job or summary whose task message is sent twice (as the resend sweep may do) is processed once: the steps
claim their rows with a conditional UPDATE, so the duplicate finds nothing to do."""
import time

import pytest

from ingest import services, tasks
from ingest.chunking import chunk_segments
from ingest.models import Chunk, Job, VideoSummary
from tests.ingest.talks import short_talk

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT_S = 300


def wait_for(condition, what):
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {TIMEOUT_S} s waiting for {what}")


def test_a_job_and_a_summary_sent_twice_are_processed_once(media_site, tiny_whisper, admin_user, start_worker):
    media_site.add_episode(short_talk())
    start_worker("duplicates-node", concurrency=2)
    source, _ = services.do_subscribe(admin_user, media_site.feed_url)
    [job_id] = services.do_sync_source(source.pk)

    tasks.send(tasks.transcribe_video, job_id)
    tasks.send(tasks.transcribe_video, job_id)
    job = wait_for(lambda: Job.objects.filter(pk=job_id, stage__in=Job.FINAL_STAGES).first(), "the job to finish")
    summary = wait_for(lambda: VideoSummary.objects.filter(video=job.video_id, written_at__isnull=False).first(), "its summary")
    tasks.send(tasks.summarize_video, job.video_id)
    tasks.send(tasks.embed_video, job_id)
    time.sleep(3)  # the late duplicates reach the worker and find nothing to do

    assert job.stage == Job.INDEXED, job.error
    assert job.attempts == 0
    positions = list(Chunk.objects.filter(video=job.video_id).order_by("position").values_list("position", flat=True))
    assert positions == list(range(len(chunk_segments(job.video.segments))))
    assert VideoSummary.objects.get(video=job.video_id).written_at == summary.written_at
    assert Job.objects.get(pk=job_id).updated_at == job.updated_at
