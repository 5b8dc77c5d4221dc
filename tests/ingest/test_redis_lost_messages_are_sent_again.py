"""Jobs and summaries whose task message Redis lost are sent again: all at once when Redis comes back without its
data, otherwise once they waited past INGEST_RESEND_AFTER_S, and not again before that limit passes anew."""
import datetime as dt

import pytest
from django.utils import timezone

from inference.plumbing.redis import redis_client
from ingest import services
from ingest.models import Job, Video, VideoSummary

pytestmark = pytest.mark.django_db(transaction=True)


def waiting_job(name, stage=Job.DISCOVERED, waited_s=0):
    video = Video.objects.create(extractor="generic", video_id=name, url=f"https://example.com/{name}.mp3")
    job = Job.objects.create(video=video, stage=stage)
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - dt.timedelta(seconds=waited_s))
    return job


def test_a_redis_that_came_back_empty_is_noticed_once():
    services.broker_lost_its_messages()  # whatever an earlier test left, the current run is now remembered
    assert services.broker_lost_its_messages() is False
    redis_client().delete(services.BROKER_RUN_KEY)  # as after a restart without persistence
    assert services.broker_lost_its_messages() is True
    assert services.broker_lost_its_messages() is False


def test_after_lost_messages_every_waiting_job_is_sent_again_at_once(settings):
    settings.INGEST_RESEND_AFTER_S = 300
    fresh = waiting_job("fresh")
    between_steps = waiting_job("between-steps", stage=Job.CHUNKING)
    waiting_job("done", stage=Job.INDEXED)
    assert services.do_release_abandoned_jobs() == []
    assert sorted(services.do_release_abandoned_jobs(messages_lost=True)) == sorted(
        [(fresh.pk, Job.DISCOVERED), (between_steps.pk, Job.CHUNKING)]
    )


def test_a_job_waiting_past_the_limit_is_sent_again_once_per_limit(settings):
    settings.INGEST_RESEND_AFTER_S = 300
    waiting_job("recent", waited_s=60)
    stalled = waiting_job("stalled", waited_s=400)
    assert services.do_release_abandoned_jobs() == [(stalled.pk, Job.DISCOVERED)]
    assert services.do_release_abandoned_jobs() == []


def test_an_unwritten_summary_is_offered_again_once_per_limit(settings):
    settings.INGEST_RESEND_AFTER_S = 300
    indexed = waiting_job("indexed-long-ago", stage=Job.INDEXED, waited_s=400)
    waiting_job("indexed-now", stage=Job.INDEXED)
    assert services.do_release_lost_summaries() == [indexed.video_id]
    assert services.do_release_lost_summaries() == []
    assert VideoSummary.objects.get(video_id=indexed.video_id).written_at is None
    assert sorted(services.do_release_lost_summaries(messages_lost=True)) == sorted(Video.objects.values_list("pk", flat=True))
