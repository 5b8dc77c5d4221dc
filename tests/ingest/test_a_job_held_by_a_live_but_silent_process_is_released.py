"""A job whose owner lives on but stopped showing it works on it (its step died with the database connection,
so it never released the job) is handed back once the owner is silent past the limit, as for a dead owner."""
from datetime import timedelta

import pytest
from django.utils import timezone

from inference.plumbing import leases
from ingest import services
from ingest.models import Job, Video

pytestmark = pytest.mark.django_db


def job_owned_by_this_live_process(video_id, silent_for):
    video = Video.objects.create(extractor="Generic", video_id=video_id, url=f"https://example.com/{video_id}.mp3")
    return Job.objects.create(video=video, stage=Job.TRANSCRIBING, owner=leases.current_holder(),
                              heartbeat_at=timezone.now() - silent_for)


def test_a_live_owner_silent_past_the_limit_loses_its_job_and_a_working_one_keeps_it(settings):
    silent = job_owned_by_this_live_process("silent", leases.HOLDER_SILENCE_LIMIT + timedelta(seconds=1))
    working = job_owned_by_this_live_process("working", timedelta(seconds=2))

    assert services.do_release_abandoned_jobs(settings.NODE_NAME) == [(silent.pk, Job.TRANSCRIBING)]
    assert Job.objects.get(pk=silent.pk).owner == ""
    assert Job.objects.get(pk=working.pk).owner == working.owner
    assert services.JobRun.claim(silent.pk, Job.TRANSCRIBE_STAGES) is not None
