"""The Sources page: subscribe, see progress, sync now, unsubscribe; unsafe URLs are refused with a reason."""
import pytest
from django.urls import reverse

from ingest.models import Job, Source, Subscription, Video

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(client, django_user_model):
    user = django_user_model.objects.create_user("ada", password="correct horse battery")
    client.force_login(user)
    return user


def test_the_navigation_links_to_the_sources_page(client, ada):
    page = client.get(reverse("dashboard")).content.decode()
    assert f'href="{reverse("sources")}"' in page


def test_subscribing_lists_the_source_with_its_progress(client, ada):
    response = client.post(reverse("subscribe"), {"url": "https://93.184.215.14/feed.xml"}, follow=True)
    source = Source.objects.get(url="https://93.184.215.14/feed.xml")
    video = Video.objects.create(extractor="Generic", video_id="1", url="https://93.184.215.14/1.mp3", title="Episode one")
    video.sources.add(source)
    Job.objects.create(video=video, stage=Job.TRANSCRIBING, percent=42)

    page = client.get(reverse("sources")).content.decode()
    assert Subscription.objects.filter(user=ada, source=source).exists()
    assert "Subscribed to" in response.content.decode()
    assert "0/1 indexed" in page and 'Episode one' in page and "transcribing 42%" in page and "<progress" in page


def test_a_private_address_is_refused_with_the_reason(client, ada):
    response = client.post(reverse("subscribe"), {"url": "http://192.168.1.10/feed.xml"}, follow=True)
    assert "Not subscribed: 192.168.1.10 is a private address" in response.content.decode()
    assert not Source.objects.exists()


def test_two_employees_subscribing_share_one_source(client, ada, django_user_model):
    Source.objects.create(url="https://93.184.215.14/feed.xml")
    client.post(reverse("subscribe"), {"url": "https://93.184.215.14/feed.xml"})
    assert Source.objects.count() == 1 and Subscription.objects.count() == 1


def test_unsubscribing_keeps_the_source_for_the_others(client, ada):
    source = Source.objects.create(url="https://93.184.215.14/feed.xml")
    Subscription.objects.create(user=ada, source=source)
    client.post(reverse("unsubscribe", args=[source.pk]))
    assert not Subscription.objects.exists() and Source.objects.filter(pk=source.pk).exists()


def test_sync_now_is_only_for_ones_own_subscriptions(client, ada):
    source = Source.objects.create(url="https://93.184.215.14/feed.xml")
    assert client.post(reverse("sync-source", args=[source.pk])).status_code == 404
    Subscription.objects.create(user=ada, source=source)
    assert client.post(reverse("sync-source", args=[source.pk])).status_code == 302
