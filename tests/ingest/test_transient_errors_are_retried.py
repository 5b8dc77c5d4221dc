"""A network failure is retried with growing delays up to INGEST_MAX_ATTEMPTS; then the job fails."""
import pytest

from ingest import services
from ingest.models import Job, Video

pytestmark = pytest.mark.django_db


@pytest.fixture
def unreachable_job(allow_private_urls):
    # Port 9 (discard) on loopback: nothing listens, every connection is refused.
    video = Video.objects.create(extractor="Generic", video_id="down", url="http://127.0.0.1:9/episode.mp3")
    return Job.objects.create(video=video)


def test_a_refused_connection_is_retried_later_then_fails_for_good(unreachable_job, settings):
    settings.INGEST_MAX_ATTEMPTS = 3
    delays = []
    for _ in range(2):
        with pytest.raises(services.RetryLater) as later:
            services.do_transcribe_video(unreachable_job.pk)
        delays.append(later.value.delay_s)
        waiting = Job.objects.get(pk=unreachable_job.pk)
        assert waiting.stage == Job.DOWNLOADING and waiting.owner == "" and "Connection refused" in waiting.error

    assert services.do_transcribe_video(unreachable_job.pk) is False
    failed = Job.objects.get(pk=unreachable_job.pk)
    assert (failed.stage, failed.attempts) == (Job.FAILED, 3) and "Connection refused" in failed.error
    assert delays[1] == 2 * delays[0]


def test_a_failed_job_can_be_retried_from_the_start(unreachable_job):
    Job.objects.filter(pk=unreachable_job.pk).update(stage=Job.FAILED, attempts=4, error="boom")
    assert services.do_retry_job(unreachable_job.pk)
    assert Job.objects.filter(pk=unreachable_job.pk, stage=Job.DISCOVERED, attempts=0, error="").exists()
    assert not services.do_retry_job(unreachable_job.pk), "only failed jobs are retried"
