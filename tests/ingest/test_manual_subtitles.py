"""With INGEST_USE_SUBTITLES, a video's own subtitles are its transcript: no audio download, no whisper."""
import pytest
from django.core.management import call_command

from ingest.models import Job, Video

pytestmark = pytest.mark.django_db(transaction=True)

CAPTIONS = """WEBVTT

00:00:01.000 --> 00:00:04.500
The quarterly numbers are <i>better</i> than expected.

00:00:04.500 --> 00:00:09.000
Sales grew by twelve percent &amp; costs stayed flat.
"""


def test_manual_subtitles_replace_the_transcription(media_site, admin_user, settings):
    settings.INGEST_USE_SUBTITLES = True
    (media_site.root / "talk.mp3").write_bytes(b"never downloaded")
    (media_site.root / "captions.vtt").write_text(CAPTIONS)
    (media_site.root / "talk.html").write_text(
        "<html><head><title>Quarterly results</title></head><body><video controls>"
        '<source src="talk.mp3" type="audio/mpeg"><track kind="subtitles" src="captions.vtt" srclang="en">'
        "</video></body></html>"
    )

    call_command("ingest", media_site.url("talk.html"), "--inline")

    video = Video.objects.get()
    assert video.job.stage == Job.INDEXED and video.transcript_origin == "subtitles" and video.language == "en"
    assert video.segments == [
        {"start": 1.0, "end": 4.5, "text": "The quarterly numbers are better than expected."},
        {"start": 4.5, "end": 9.0, "text": "Sales grew by twelve percent & costs stayed flat."},
    ]
    assert [(chunk.start_s, chunk.end_s) for chunk in video.chunks.all()] == [(1.0, 9.0)]
    assert media_site.media_requests("talk.mp3") == []
