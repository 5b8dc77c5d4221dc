"""Transcription reports how far it is in the audio while it runs, ending at the audio's length."""
import subprocess

import pytest

from inference.services import do_fetch_model
from ingest.media import wav_duration_s
from ingest.transcription import transcribe
from tests.ingest.media_site import speak
from tests.ingest.talks import LONG_TALK

pytestmark = pytest.mark.django_db  # the model catalog is in the database


def test_progress_follows_the_audio_up_to_its_end(tmp_path):
    speak(" ".join(LONG_TALK[:9]), tmp_path / "talk.mp3")
    wav = tmp_path / "talk.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(tmp_path / "talk.mp3"), "-ar", "16000", "-ac", "1", str(wav)], check=True)
    checkpoint = str(do_fetch_model("whisper-tiny.en"))
    seconds_done = []

    segments, language = transcribe(checkpoint, wav, language="en", on_progress=seconds_done.append)

    duration = wav_duration_s(wav)
    assert duration > 35, "long enough for whisper to decode more than one 30-second window"
    assert len(seconds_done) >= 2 and seconds_done == sorted(seconds_done)
    assert abs(seconds_done[-1] - duration) < 1.0
    assert segments[-1]["end"] <= duration + 1 and language == "en"
