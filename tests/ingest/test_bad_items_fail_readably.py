"""Over-long, removed and non-media items end as failed jobs with a readable reason; the rest is ingested."""
import datetime as dt
import json

import pytest
from django.core.management import CommandError, call_command

from ingest.models import Job
from tests.ingest.media_site import Episode
from tests.ingest.talks import short_talk

pytestmark = pytest.mark.django_db(transaction=True)


def episode(guid, hours_ago, duration_s=None):
    published = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours_ago)
    return Episode(guid, guid.replace("-", " "), ["unused"], published, duration_s)


def test_bad_items_fail_with_a_reason_and_the_good_one_is_indexed(media_site, tiny_whisper, admin_user, capsys):
    media_site.add_episode(short_talk())
    (media_site.root / "long.mp3").write_bytes((media_site.root / "talk-welcome.mp3").read_bytes())
    media_site.add_episode(episode("five-hour-lecture", 1, duration_s=5 * 3600), media_name="long.mp3")
    media_site.add_episode(episode("removed-episode", 2), media_name="gone.mp3")
    (media_site.root / "article.html").write_text("<html><head><title>Just text</title></head><body><p>No media.</p></body></html>")
    media_site.add_episode(episode("not-media", 3), media_name="article.html")

    with pytest.raises(CommandError, match=r"^3 of 4 video\(s\) failed"):
        call_command("ingest", media_site.feed_url, "--inline", "--json")
    jobs = {job["title"]: job for job in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["jobs"]}

    assert jobs["Welcome to new hires"]["stage"] == Job.INDEXED
    assert jobs["five hour lecture"]["stage"] == Job.FAILED
    assert jobs["five hour lecture"]["error"] == "the video lasts 5:00:00, over the 4:00:00 limit"
    assert media_site.media_requests("long.mp3") == [], "an over-long video is refused before any download"
    assert jobs["removed episode"]["stage"] == Job.FAILED and "404" in jobs["removed episode"]["error"]
    assert jobs["not media"]["stage"] == Job.FAILED and "Unsupported URL" in jobs["not media"]["error"]
    assert jobs["removed episode"]["attempts"] == jobs["not media"]["attempts"] == 1, "permanent errors are not retried"
