"""Listing a source: only what is new since the last sync, a bounded backfill, and readable errors."""
import datetime as dt

import pytest

from ingest.discovery import DiscoveryError, discover
from tests.ingest.media_site import Episode

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def feed_of_ten_days(media_site):
    (media_site.root / "episode.mp3").write_bytes(b"not decoded when listing")
    for day in range(10, 0, -1):
        media_site.add_episode(Episode(f"day-{day}", f"Day {day}", [], NOW - dt.timedelta(days=day)), media_name="episode.mp3")
    return media_site


def guids(listing):
    return [video.video_id for video in listing.videos]


def test_the_first_sync_lists_at_most_the_backfill_count_newest_first(feed_of_ten_days):
    listing = discover(feed_of_ten_days.feed_url, backfill_videos=3)
    assert guids(listing) == ["day-1", "day-2", "day-3"]
    assert listing.title == "Kotatsu test talks"


def test_the_first_sync_lists_only_the_backfill_days(feed_of_ten_days):
    assert guids(discover(feed_of_ten_days.feed_url, backfill_days=4, backfill_videos=50)) == ["day-1", "day-2", "day-3"]


def test_a_later_sync_stops_at_the_first_item_not_newer_than_the_last_sync(feed_of_ten_days):
    listing = discover(feed_of_ten_days.feed_url, newer_than=NOW - dt.timedelta(days=2, hours=12), backfill_videos=1)
    assert guids(listing) == ["day-1", "day-2"]
    assert all(video.extractor == "Generic" and video.url == feed_of_ten_days.url("episode.mp3") for video in listing.videos)


def test_a_single_media_url_is_listed_whatever_its_date(feed_of_ten_days):
    listing = discover(feed_of_ten_days.url("episode.mp3"), newer_than=NOW)
    assert [(video.extractor, video.video_id) for video in listing.videos] == [("Generic", "episode")]


def test_an_unreachable_source_is_a_readable_error(media_site):
    with pytest.raises(DiscoveryError, match="HTTP Error 404"):
        discover(media_site.url("no-such-feed.xml"))
