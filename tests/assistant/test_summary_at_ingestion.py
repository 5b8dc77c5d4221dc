"""A video's summary is part of its ingestion: the worker that indexes it sends the summary task (the LLM runs in
the worker), and the nightly sync sends it again for any indexed video left without one; no schedule polls for
new videos."""
import time

import pytest
from django_celery_beat.models import PeriodicTask

from ingest import tasks
from ingest.models import Job, Video, VideoSummary
from tests.assistant.conftest import ensure_model_catalog
from tests.assistant.knowledge import KITCHEN_SAFETY, timed_segments
from tests.ingest.summary_checks import assert_written_from

WAIT_LIMIT_S = 300  # the worker embeds the transcript and summarizes it on a machine shared with other tests


def video_in_stage(stage):
    video = Video.objects.create(
        extractor="generic", video_id="kitchen", url="https://media.example/kitchen.mp3",
        title="Kitchen safety briefing", segments=timed_segments(KITCHEN_SAFETY),
    )
    Job.objects.create(video=video, stage=stage)
    return video


def wait_for_written_summary(video):
    deadline = time.monotonic() + WAIT_LIMIT_S
    while time.monotonic() < deadline:
        summary = VideoSummary.objects.filter(video=video, written_at__isnull=False).first()
        if summary is not None:
            return summary
        time.sleep(0.5)
    raise AssertionError(f"no summary of {video} was written within {WAIT_LIMIT_S} s")


def test_a_video_is_summarized_by_the_worker_once_it_is_indexed(start_worker):
    ensure_model_catalog()
    video = video_in_stage(Job.CHUNKING)
    start_worker("summary-node")
    tasks.embed_video.delay(video.job.pk)
    summary = wait_for_written_summary(video)
    assert Job.objects.get(video=video).stage == Job.INDEXED
    assert_written_from(summary, video)
    assert len(summary.key_moments) >= 3 and summary.topics


def test_the_nightly_sync_summarizes_an_indexed_video_left_without_a_summary(start_worker):
    ensure_model_catalog()
    video = video_in_stage(Job.INDEXED)
    start_worker("summary-node")
    tasks.sync_all_sources.delay()
    assert wait_for_written_summary(video).text


@pytest.mark.django_db
def test_no_schedule_polls_for_videos_to_summarize():
    assert not PeriodicTask.objects.filter(task__contains=".tasks.summar").exists()
