"""The sources' progress (on the dashboard and the Sources page) is a fragment that asks to be fetched again while
anything is ingesting, with each running job's stage and percent, and stops asking once all is done."""
import pytest
from django.urls import reverse
from django.utils import timezone

from ingest.models import Job, Source, Subscription, Video

pytestmark = pytest.mark.django_db
REFRESH = '<div id="source-progress" data-refresh="/sources/progress"'


@pytest.fixture
def source(client, django_user_model):
    user = django_user_model.objects.create_user("ada", password="correct horse battery")
    client.force_login(user)
    source = Source.objects.create(url="https://93.184.215.14/feed.xml", title="Team talks", last_synced_at=timezone.now())
    Subscription.objects.create(user=user, source=source)
    return source


def video_of(source, stage, percent):
    video = Video.objects.create(extractor="Generic", video_id="1", url="https://93.184.215.14/1.mp3", title="Episode one")
    video.sources.add(source)
    return Job.objects.create(video=video, stage=stage, percent=percent)


def test_a_running_job_shows_its_stage_and_percent_and_keeps_the_fragment_refreshing(client, source):
    job = video_of(source, Job.TRANSCRIBING, 37.4)
    fragment = client.get(reverse("source-progress")).content.decode()
    assert REFRESH in fragment and "transcribing 37%" in fragment
    assert f'<li class="job" data-job="{job.pk}">' in fragment and '<progress class="job-progress" value="37" max="100">' in fragment

    Job.objects.filter(pk=job.pk).update(stage=Job.EMBEDDING, percent=80.0)
    assert "embedding 80%" in client.get(reverse("source-progress")).content.decode()


def test_both_pages_carry_the_refreshing_fragment(client, source):
    video_of(source, Job.DOWNLOADING, 5.0)
    for page in (reverse("dashboard"), reverse("sources")):
        assert REFRESH in client.get(page).content.decode()


def test_a_source_waiting_for_its_first_listing_keeps_refreshing(client, source):
    Source.objects.filter(pk=source.pk).update(last_synced_at=None)
    fragment = client.get(reverse("source-progress")).content.decode()
    assert REFRESH in fragment and "Listing its videos" in fragment


def test_once_everything_is_indexed_the_fragment_stops_asking(client, source):
    video_of(source, Job.INDEXED, 100.0)
    fragment = client.get(reverse("source-progress")).content.decode()
    assert "data-refresh" not in fragment and "1/1 indexed" in fragment
