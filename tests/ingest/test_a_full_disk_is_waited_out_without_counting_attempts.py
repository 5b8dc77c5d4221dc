"""A video whose audio meets a full disk waits for space with the disk's one line, however long that takes (no
attempt counted), and is transcribed once space returns."""
import datetime as dt

import pytest

from ingest import services
from ingest.models import Job, Video
from tests.ingest.media_site import Episode
from tests.tiny_filesystem import tiny_filesystem

pytestmark = pytest.mark.django_db

# Eight different sentences: the same two said four times read to whisper as a decoding loop (its compression-ratio
# check), and it may drop the whole clip.
SENTENCES = [
    "Our office opens at eight in the morning.", "The doors close at seven in the evening.",
    "Visitors sign in at the front desk.", "The kitchen is on the second floor.",
    "Meeting rooms are booked in the calendar.", "Bicycles are parked in the courtyard.",
    "The library is quiet after lunch.", "Please switch off the lights when you leave.",
]


def test_a_full_disk_is_waited_out_and_the_video_goes_on_when_space_returns(media_site, tiny_whisper, settings, tmp_path):
    settings.INGEST_MAX_ATTEMPTS = 2
    media_site.add_episode(Episode("talk", "Talk", SENTENCES, dt.datetime.now(dt.timezone.utc)))
    video = Video.objects.create(extractor="Generic", video_id="talk", url=media_site.url("talk.mp3"))
    job = Job.objects.create(video=video)

    with tiny_filesystem(tmp_path / "full", size="64k") as full:
        settings.AUDIO_TMP_DIR = full
        for _ in range(settings.INGEST_MAX_ATTEMPTS + 1):  # more tries than a network error would get
            with pytest.raises(services.RetryLater) as later:
                services.do_transcribe_video(job.pk)
            waiting = Job.objects.get(pk=job.pk)
            assert waiting.owner == "" and waiting.attempts == 0 and waiting.stage != Job.FAILED
            assert waiting.error.startswith(f"audio download: no space left on {full}")
        assert later.value.delay_s == services.NO_SPACE_RETRY_DELAY_S

    settings.AUDIO_TMP_DIR = tmp_path / "audio"  # space is back
    assert services.do_transcribe_video(job.pk) is True
    assert Job.objects.get(pk=job.pk).stage == Job.CHUNKING
    assert "office" in " ".join(segment["text"] for segment in Video.objects.get(pk=video.pk).segments).lower()
