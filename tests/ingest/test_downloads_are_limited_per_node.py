"""A node runs at most INGEST_DOWNLOADS_PER_NODE downloads at once, whatever its number of worker processes."""
import pytest
from django.conf import settings as django_settings

from ingest import services
from ingest.download_slots import NoFreeSlot, download_slot
from ingest.models import Job, Video

pytestmark = pytest.mark.django_db


def test_slots_are_counted_per_node_and_freed_after_use():
    client = services.redis_client()
    with download_slot(client, "node-a", 2), download_slot(client, "node-a", 2):
        with pytest.raises(NoFreeSlot, match="all 2 download slots of node-a are busy"):
            with download_slot(client, "node-a", 2):
                pass
        with download_slot(client, "node-b", 2):
            pass
    with download_slot(client, "node-a", 2):
        pass


def test_a_job_waits_for_a_free_slot_without_counting_an_attempt(settings):
    settings.INGEST_DOWNLOADS_PER_NODE = 1
    video = Video.objects.create(extractor="Generic", video_id="queued", url="https://93.184.215.14/a.mp3")
    job = Job.objects.create(video=video)
    with download_slot(services.redis_client(), django_settings.NODE_NAME, 1):
        with pytest.raises(services.RetryLater):
            services.do_transcribe_video(job.pk)
    job.refresh_from_db()
    assert (job.stage, job.owner, job.attempts, job.error) == (Job.DISCOVERED, "", 0, "")
