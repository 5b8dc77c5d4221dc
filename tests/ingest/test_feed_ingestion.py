"""Subscribing to an RSS feed of spoken talks ingests every item into the searchable knowledge base."""
import datetime as dt
import json

import jiwer
import pytest
from django.core.management import call_command

from ingest.models import Chunk, Job, Video
from tests.ingest.media_site import Episode
from tests.ingest.talks import ANSWER_WORDS, LATE_EPISODE_SENTENCES, QUESTION, long_talk, short_talk

pytestmark = pytest.mark.django_db(transaction=True)
NORMALIZE = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])


def run_command(*args):
    lines = []

    class Capture:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    call_command(*args, stdout=Capture())
    return "".join(lines).strip().splitlines()


@pytest.fixture
def talks_site(media_site, tiny_whisper):
    media_site.add_episode(short_talk())
    return media_site


def word_error_rate(reference, hypothesis):
    return jiwer.wer(reference, hypothesis, reference_transform=NORMALIZE, hypothesis_transform=NORMALIZE)


def test_subscribing_to_a_feed_ingests_every_item_with_timed_searchable_chunks(talks_site, admin_user):
    talks_site.add_episode(long_talk())
    summary = json.loads(run_command("ingest", talks_site.feed_url, "--inline", "--json")[-1])

    assert sorted(job["title"] for job in summary["jobs"]) == ["Monthly engineering update", "Welcome to new hires"]
    assert all(job["stage"] == Job.INDEXED for job in summary["jobs"]), summary
    for episode in (long_talk(), short_talk()):
        video = Video.objects.get(extractor="Generic", video_id=episode.guid)
        transcript = " ".join(segment["text"] for segment in video.segments)
        assert word_error_rate(episode.words, transcript) <= 0.30, transcript
        chunks = list(video.chunks.all())
        assert chunks and video.transcript_origin == "whisper:whisper-tiny.en"
        assert all(0 <= chunk.start_s < chunk.end_s <= video.duration_s + 1 for chunk in chunks)
        assert all(chunk.segment_times for chunk in chunks)
    assert Chunk.objects.filter(video__video_id="talk-update").count() >= 2
    assert not list((talks_site.root.parent / "audio").glob("*/*")), "temporary audio is deleted"

    results = json.loads(run_command("search", QUESTION, "--k", "3")[-1])
    best = results[0]
    assert best["title"] == "Monthly engineering update"
    assert all(words in best["text"].lower() for words in ANSWER_WORDS), best
    assert best["start_s"] > 0, "the answer is in the middle of the talk, not its opening chunk"
    assert set(best) == {"video_id", "title", "url", "start_s", "end_s", "text", "score", "fused_score"}
    assert [result["fused_score"] for result in results] == sorted((result["fused_score"] for result in results), reverse=True)


def test_a_resync_finds_nothing_new_and_a_new_item_is_the_only_one_ingested(talks_site, admin_user):
    run_command("ingest", talks_site.feed_url, "--inline")
    first_chunks = set(Chunk.objects.values_list("pk", flat=True))
    welcome_fetches = len(talks_site.media_requests("talk-welcome.mp3"))

    again = run_command("ingest", talks_site.feed_url, "--inline", "--json")
    assert again[0].endswith(": 0 new video(s)")

    late = Episode("talk-alarm", "Fire alarm test", LATE_EPISODE_SENTENCES, dt.datetime.now(dt.timezone.utc))
    talks_site.add_episode(late)
    summary = json.loads(run_command("ingest", talks_site.feed_url, "--inline", "--json")[-1])

    assert run_command("ingest", talks_site.feed_url, "--inline")[0].endswith(": 0 new video(s)")
    assert len(summary["jobs"]) == 2 and all(job["stage"] == Job.INDEXED for job in summary["jobs"])
    assert set(Chunk.objects.exclude(video__video_id="talk-alarm").values_list("pk", flat=True)) == first_chunks
    assert len(talks_site.media_requests("talk-welcome.mp3")) == welcome_fetches, "known items are not fetched again"
    assert talks_site.media_requests("talk-alarm.mp3")
    results = json.loads(run_command("search", "When is the fire alarm tested?", "--json")[-1])
    assert results[0]["title"] == "Fire alarm test"
