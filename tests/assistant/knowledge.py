"""A small knowledge base of indexed videos for assistant tests, stored through ingest's own chunking,
embedding model and chunk store, so that retrieval runs on real vectors."""
from datetime import datetime, timezone

from django.db import transaction

from ingest.chunking import chunk_segments
from ingest.models import Job, Source, Video
from ingest.replica import rebuild_snapshot
from ingest.services import embed_texts, store_chunks

SEGMENT_S = 6.0
FILLER = [
    "Thanks everyone for joining today.",
    "Let us move on to the next point on the agenda.",
    "Any questions so far? Great, let us continue.",
    "I will share the slides after the meeting.",
]
KITCHEN_SAFETY = [
    "Welcome to the kitchen safety briefing for the Osaka office.",
    "Please wash your hands before preparing any food.",
    *FILLER,
    "The fire extinguisher is mounted next to the north exit door of the kitchen.",
    "Never pour water on a grease fire; smother it with the lid of the pan.",
    *FILLER,
    "Knives go back into the magnetic strip above the sink after use.",
    "The first aid kit sits in the white cabinet beside the refrigerator.",
    *FILLER,
    "Report every burn or cut to the office manager the same day.",
    "That is all for the kitchen safety briefing, thank you.",
]
SALES_REVIEW = [
    "This is the quarterly sales review for the third quarter.",
    "Revenue grew by eighteen percent compared with the second quarter.",
    *FILLER,
    "The new subscription plan brought in four hundred enterprise customers.",
    "Churn fell to two percent thanks to the customer success team.",
    *FILLER,
    "Next quarter we will focus on the European market, starting with Germany.",
]
VPN_ONBOARDING = [
    "In this onboarding video we set up the company VPN on your laptop.",
    "Download the WireGuard client from the internal software portal.",
    *FILLER,
    "Import the configuration file that IT emailed you on your first day.",
    "If the tunnel does not connect, restart the laptop and try again before calling IT.",
]


def timed_segments(sentences):
    return [{"start": index * SEGMENT_S, "end": (index + 1) * SEGMENT_S, "text": text} for index, text in enumerate(sentences)]


def indexed_video(source, video_id, title, sentences, url=None, published=datetime(2026, 9, 1, tzinfo=timezone.utc)):
    """A video whose job is INDEXED, its transcript chunked, embedded and stored as ingestion does it."""
    video = Video.objects.create(
        extractor="generic", video_id=video_id, url=url or f"https://media.example/{video_id}.mp3", title=title,
        duration_s=len(sentences) * SEGMENT_S, published_at=published, segments=timed_segments(sentences),
    )
    video.sources.add(source)
    chunks = chunk_segments(video.segments, target_words=60, target_seconds=30.0, overlap_s=6.0)
    vectors = embed_texts([chunk.text for chunk in chunks])
    with transaction.atomic():  # as ingestion does: the knowledge base row is locked while chunks are written
        store_chunks(video, chunks, vectors)
    Job.objects.create(video=video, stage=Job.INDEXED, percent=100.0)
    return video


def build_knowledge_base():
    """{"source": the team source, "other": a second source, plus the three videos by short name}.

    The FAISS replica is rebuilt from the database: tests roll back, and a rolled back database may hand out
    the same chunk ids and revision again, which a replica caught up incrementally would take as seen."""
    team = Source.objects.create(url="https://media.example/team.xml", title="Team meetings")
    other = Source.objects.create(url="https://media.example/onboarding.xml", title="Onboarding")
    knowledge = {
        "source": team,
        "other": other,
        "kitchen": indexed_video(team, "kitchen", "Kitchen safety briefing", KITCHEN_SAFETY,
                                 url="https://www.youtube.com/watch?v=kitchen0001"),
        "sales": indexed_video(team, "sales", "Quarterly sales review", SALES_REVIEW,
                               published=datetime(2026, 10, 1, tzinfo=timezone.utc)),
        "vpn": indexed_video(other, "vpn", "VPN onboarding", VPN_ONBOARDING),
    }
    rebuild_snapshot()
    return knowledge


def segment_start(sentences, phrase):
    """The start second of the segment saying `phrase`."""
    return next(index for index, text in enumerate(sentences) if phrase in text) * SEGMENT_S
