"""Ingesting a spoken talk writes its summary (the LLM's when it passes the checks against the transcript, else
the transcript's own sentences, labelled so), three to six key moments at seconds where transcript segments
begin, and a few topics; a transcript longer than the LLM's context is summarized part by part (map-reduce)."""
import pytest
from django.core.management import call_command

from inference.core.engine import Engine
from inference.model_files import DEFAULT_MODEL
from inference.services import do_fetch_model
from ingest.models import Video, VideoSummary
from ingest.summaries import write_digest
from tests.assistant.conftest import ensure_model_catalog
from tests.assistant.knowledge import timed_segments
from tests.ingest.conftest import hours_ago
from tests.ingest.summary_checks import assert_written_from
from tests.ingest.media_site import Episode
from tests.ingest.talks import LONG_TALK

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_ingested_talk_has_a_checked_summary_key_moments_at_its_seconds_and_topics(media_site, tiny_whisper, admin_user):
    ensure_model_catalog()
    # The first eight sentences of the monthly update: three subjects.
    media_site.add_episode(Episode("office-news", "Office news", LONG_TALK[:8], hours_ago(2)))
    call_command("ingest", media_site.feed_url, "--inline")

    video = Video.objects.get(video_id="office-news")
    summary = VideoSummary.objects.get(video=video)
    assert_written_from(summary, video)
    starts = [moment["start_s"] for moment in summary.key_moments]
    assert 3 <= len(starts) <= 6 and starts == sorted(set(starts))
    assert set(starts) <= {segment["start"] for segment in video.segments}, "every key moment is a segment's start"
    assert all(moment["title"].strip() for moment in summary.key_moments)
    assert 2 <= len(summary.topics) <= 5 and all(0 < len(topic.split()) <= 4 for topic in summary.topics)


@pytest.mark.slow  # minutes: SmolLM2 writes, checks and rewrites the notes of each part, the summary, titles and topics
def test_a_transcript_longer_than_the_context_is_summarized_part_by_part(db):
    ensure_model_catalog()
    engine = Engine(do_fetch_model(DEFAULT_MODEL), context_length=400)
    segments = timed_segments(LONG_TALK[:10])  # about 220 tokens; 400 leave about 170 for the transcript
    digest = write_digest("Monthly engineering update", segments, engine, DEFAULT_MODEL)
    assert digest.parts == 2
    assert digest.text and (digest.kind == VideoSummary.ABSTRACTIVE) == (not digest.fallback_reason)
    assert len(digest.key_moments) == 3 and {moment["start_s"] for moment in digest.key_moments} <= {
        segment["start"] for segment in segments
    }
