"""The admin shows every job's stage and progress, syncs a source on demand, and deletes videos fully."""
import numpy as np
import pytest
from django.db import transaction
from django.urls import reverse

from ingest import replica, services
from ingest.chunking import TimedChunk
from ingest.models import Chunk, Job, Source, Video

pytestmark = pytest.mark.django_db


@pytest.fixture
def video():
    source = Source.objects.create(url="https://93.184.215.14/feed.xml", title="Talks")
    video = Video.objects.create(extractor="Generic", video_id="1", url="https://93.184.215.14/1.mp3", title="Episode one")
    video.sources.add(source)
    return video


def test_jobs_and_sources_show_progress_bars(admin_client, video):
    Job.objects.create(video=video, stage=Job.TRANSCRIBING, percent=37.5)
    jobs_page = admin_client.get(reverse("admin:ingest_job_changelist")).content.decode()
    sources_page = admin_client.get(reverse("admin:ingest_source_changelist")).content.decode()
    assert '<progress value="38" max="100"' in jobs_page and "transcribing 38%" in jobs_page
    assert "<progress" in sources_page and "0/1" in sources_page


def test_sync_now_is_an_action_on_sources(admin_client, video):
    response = admin_client.post(
        reverse("admin:ingest_source_changelist"),
        {"action": "sync_now", "_selected_action": [video.sources.get().pk]},
        follow=True,
    )
    assert "Syncing 1 source(s)." in response.content.decode()


def test_deleting_a_video_in_the_admin_removes_its_vectors(admin_client, video):
    with transaction.atomic():
        services.store_chunks(video, [TimedChunk(0.0, 4.0, "hello", [[0.0, 4.0]])], np.ones((1, 4), np.float32))
    assert replica.current_replica().size == 1
    admin_client.post(reverse("admin:ingest_video_delete", args=[video.pk]), {"post": "yes"})
    assert not Chunk.objects.exists() and replica.current_replica().size == 0
