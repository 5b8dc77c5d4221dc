"""Whisper detects the language each video is spoken in: a Japanese recording is transcribed in Japanese,
its language stored on the video and shown on the Sources page; INGEST_LANGUAGE still forces one."""
import re
import subprocess

import pytest
from django.core.management import call_command
from django.urls import reverse

from inference.services import do_fetch_model
from ingest.models import Job, Video
from ingest.transcription import transcribe
from tests.ingest.conftest import hours_ago
from tests.ingest.media_site import Episode
from tests.ingest.spoken_clips import download_clips, transcript_of

pytestmark = pytest.mark.django_db(transaction=True)
JAPANESE_SCRIPT = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return download_clips(tmp_path_factory.mktemp("audioeval"))


@pytest.fixture
def multilingual_whisper(settings, monkeypatch):
    """whisper-base knows 99 languages (whisper-tiny.en only English)."""
    settings.INGEST_WHISPER_MODEL = "whisper-base"
    monkeypatch.setenv("INGEST_WHISPER_MODEL", "whisper-base")
    settings.INGEST_LANGUAGE = ""
    monkeypatch.setenv("INGEST_LANGUAGE", "")


def test_a_japanese_recording_is_transcribed_in_japanese_and_its_language_shown(
    clips, media_site, multilingual_whisper, admin_user, client
):
    clip = clips["ja/konnichiwa_sekai"]
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(clip), "-codec:a", "libmp3lame", str(media_site.root / "aisatsu.mp3")], check=True)
    media_site.add_episode(Episode("aisatsu", "挨拶", [], hours_ago(1)), media_name="aisatsu.mp3")

    call_command("ingest", media_site.feed_url, "--inline")

    video = Video.objects.get(video_id="aisatsu")
    transcript = "".join(segment["text"] for segment in video.segments)
    assert video.job.stage == Job.INDEXED and video.language == "ja"
    assert JAPANESE_SCRIPT.search(transcript) and "こんにちは" in transcript, (transcript, transcript_of(clip))
    assert "こんにちは" in video.chunks.get().text
    client.force_login(admin_user)
    page = client.get(reverse("sources")).content.decode()
    assert "Spoken in Japanese" in page


def test_ingest_language_forces_the_language_whisper_transcribes_in(clips):
    checkpoint = str(do_fetch_model("whisper-base"))
    _, detected = transcribe(checkpoint, clips["ja/konnichiwa_sekai"])
    _, forced = transcribe(checkpoint, clips["ja/konnichiwa_sekai"], language="zh")
    assert (detected, forced) == ("ja", "zh")
