"""The audio of a video downloaded onto a full disk (AUDIO_TMP_DIR under VAR_DIR) fails with one line naming the
folder, as an error worth retrying: the job waits for space instead of failing for good, and nothing of the
half-written audio is taken for the video's."""
import datetime as dt

import pytest

from ingest import media
from tests.ingest.media_site import Episode
from tests.tiny_filesystem import tiny_filesystem

SENTENCES = ["Our office opens at eight in the morning.", "The doors close at seven in the evening."] * 4


@pytest.fixture
def full_audio_dir(tmp_path):
    with tiny_filesystem(tmp_path / "audio", size="256k") as mount_point:
        yield mount_point


def test_an_audio_download_onto_a_full_disk_is_a_transient_error_in_one_line(media_site, full_audio_dir):
    media_site.add_episode(Episode("long-talk", "Long talk", SENTENCES, dt.datetime.now(dt.timezone.utc)))
    info = media.probe(media_site.url("long-talk.mp3"))
    workdir = full_audio_dir / "job-1"

    with pytest.raises(media.MediaError) as refused:
        media.download_audio(info, workdir)

    assert refused.value.transient
    assert str(refused.value) == f"audio download: no space left on {workdir}"


def test_a_video_of_known_length_that_cannot_fit_is_refused_before_downloading(media_site, full_audio_dir):
    media_site.add_episode(Episode("hour-long", "Hour-long talk", SENTENCES[:2], dt.datetime.now(dt.timezone.utc)))
    info = {**media.probe(media_site.url("hour-long.mp3")), "duration": 3600}
    workdir = full_audio_dir / "job-2"
    requests_before = len(media_site.media_requests("hour-long.mp3"))

    with pytest.raises(media.MediaError) as refused:
        media.download_audio(info, workdir)

    assert refused.value.transient
    assert str(refused.value) == f"audio download: no space left on {workdir} (needs 110 MB)"
    assert len(media_site.media_requests("hour-long.mp3")) == requests_before
