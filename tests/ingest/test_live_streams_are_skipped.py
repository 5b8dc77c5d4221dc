"""A live stream is skipped with a reason instead of being recorded forever, and ingested once it has ended."""
import json

import pytest
from django.core.management import call_command

from ingest import services
from ingest.discovery import DiscoveredVideo
from ingest.models import Job, Source

pytestmark = pytest.mark.django_db

# What yt-dlp's generic extractor reads as a live stream: a DASH manifest of type "dynamic".
LIVE_MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" availabilityStartTime="2026-01-01T00:00:00Z"
     minimumUpdatePeriod="PT2S" minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period id="0" start="PT0S"><AdaptationSet mimeType="audio/mp4" codecs="mp4a.40.2" lang="en">
    <Representation id="audio" bandwidth="64000" audioSamplingRate="44100">
      <SegmentTemplate media="audio-$Number$.m4s" initialization="audio-init.mp4" duration="2" timescale="1"/>
    </Representation>
  </AdaptationSet></Period>
</MPD>"""


def test_a_live_stream_is_skipped_with_a_reason(media_site, admin_user, capsys):
    (media_site.root / "live.mpd").write_text(LIVE_MANIFEST)
    call_command("ingest", media_site.url("live.mpd"), "--inline", "--json")
    [job] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["jobs"]
    assert job["stage"] == Job.SKIPPED
    assert job["error"] == "a live stream is in progress; it is ingested once it has ended and been published"


def test_a_skipped_stream_listed_again_as_a_video_is_ingested():
    source = Source.objects.create(url="https://93.184.215.14/channel")
    live = DiscoveredVideo("Youtube", "abc", "https://93.184.215.14/abc", "Launch", None, None, skip_reason="live")
    assert services.record_video(source, live) is None
    ended = DiscoveredVideo("Youtube", "abc", "https://93.184.215.14/abc", "Launch", 3600.0, None)
    job_id = services.record_video(source, ended)
    assert Job.objects.get(pk=job_id).stage == Job.DISCOVERED
    assert services.record_video(source, ended) is None, "a known video is not started twice"
