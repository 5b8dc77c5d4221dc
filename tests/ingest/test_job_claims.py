"""A job step runs once: a second delivery of its task finds the job claimed or done, unless its owner died."""
import subprocess
import sys
from datetime import timedelta

import numpy as np
import pytest
from django.db import transaction
from django.utils import timezone

from inference.plumbing import leases
from ingest import services
from ingest.chunking import TimedChunk
from ingest.models import Chunk, Job, Video

pytestmark = pytest.mark.django_db


@pytest.fixture
def job():
    video = Video.objects.create(extractor="Generic", video_id="claimed", url="https://example.com/a.mp3")
    return Job.objects.create(video=video, stage=Job.TRANSCRIBING)


def dead_process_owner(settings):
    """The owner string of a process of this node that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return f"{settings.NODE_NAME}:{process.pid}:0"


def test_a_claimed_job_cannot_be_claimed_again_while_its_owner_lives(job):
    assert services.JobRun.claim(job.pk, Job.TRANSCRIBE_STAGES) is not None
    assert services.JobRun.claim(job.pk, Job.TRANSCRIBE_STAGES) is None


def test_a_job_is_claimed_only_by_the_step_of_its_stage(job):
    assert services.JobRun.claim(job.pk, Job.EMBED_STAGES) is None


def test_the_job_of_a_dead_process_on_this_node_is_taken_over(job, settings):
    Job.objects.filter(pk=job.pk).update(owner=dead_process_owner(settings), heartbeat_at=timezone.now())
    run = services.JobRun.claim(job.pk, Job.TRANSCRIBE_STAGES)
    assert run is not None and run.owner == leases.current_holder()


def test_the_job_of_another_node_is_taken_over_only_after_its_heartbeat_stops(job):
    Job.objects.filter(pk=job.pk).update(owner="other-node:123:456", heartbeat_at=timezone.now())
    assert services.JobRun.claim(job.pk, Job.TRANSCRIBE_STAGES) is None
    silent_since = timezone.now() - leases.HOLDER_SILENCE_LIMIT - timedelta(seconds=1)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=silent_since)
    assert services.JobRun.claim(job.pk, Job.TRANSCRIBE_STAGES) is not None


def test_a_starting_worker_releases_the_jobs_of_its_dead_predecessors_only(job, settings):
    video = Video.objects.create(extractor="Generic", video_id="alive", url="https://example.com/b.mp3")
    alive = Job.objects.create(video=video, stage=Job.EMBEDDING, owner=leases.current_holder(), heartbeat_at=timezone.now())
    Job.objects.filter(pk=job.pk).update(owner=dead_process_owner(settings), heartbeat_at=timezone.now())

    assert services.do_release_abandoned_jobs(settings.NODE_NAME) == [(job.pk, Job.TRANSCRIBING)]
    assert Job.objects.get(pk=job.pk).owner == "" and Job.objects.get(pk=alive.pk).owner == alive.owner


def test_a_lost_owner_stops_writing(job):
    run = services.JobRun.claim(job.pk, Job.TRANSCRIBE_STAGES)
    Job.objects.filter(pk=job.pk).update(owner="someone-else:1:1")
    with pytest.raises(services.JobLost):
        run.advance(Job.DOWNLOADING)


def test_a_redelivered_embedding_of_an_indexed_video_changes_nothing(job):
    chunk = TimedChunk(start_s=0.0, end_s=5.0, text="hello", segment_times=[[0.0, 5.0]])
    with transaction.atomic():
        services.store_chunks(job.video, [chunk], np.ones((1, 4), np.float32))
    Job.objects.filter(pk=job.pk).update(stage=Job.INDEXED)
    before = list(Chunk.objects.values_list("pk", flat=True))

    assert services.do_embed_video(job.pk) is False
    assert list(Chunk.objects.values_list("pk", flat=True)) == before
