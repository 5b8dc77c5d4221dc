"""A small knowledge base of indexed videos for assistant tests, stored through ingest's own chunking,
embedding model and chunk store, so that retrieval runs on real vectors."""
from datetime import datetime, timezone

from django.db import transaction

from ingest.chunking import chunk_segments
from ingest.models import Job, Source, Video
from ingest.replica import rebuild_snapshot
from ingest.embedding import active_embedding_model, embed_texts, segment_texts
from ingest.services import do_store_segment_vectors, store_chunks

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

# A long video relevant from end to end, outside the standard knowledge base: its passages alone can fill the
# source budget.
FIRE_TRAINING = [
    "Welcome to the annual fire safety training for everyone in the office.",
    "When the fire alarm goes off, stop what you are doing and leave the building at once.",
    "Do not take the lift during a fire alarm; always use the stairs.",
    "Close the doors behind you as you leave, to slow the spread of smoke and fire.",
    "Do not go back for your laptop or your bag when the fire alarm sounds.",
    "Each floor has two fire wardens who wear yellow vests during a fire evacuation.",
    "Follow the fire wardens to the assembly point in the car park across the street.",
    "At the assembly point, your fire warden counts everyone on the floor list.",
    "Tell a fire warden at once if a colleague is missing at the assembly point.",
    "Never re-enter the building until the fire brigade says it is safe.",
    "If there is smoke in the corridor, stay low where the air is cleaner.",
    "Before opening a door during a fire, touch it with the back of your hand; if it is hot, do not open it.",
    "If you are trapped by fire, close the door, seal the gap with a coat and call the fire brigade.",
    "Fire extinguishers hang next to every stairwell on every floor of the office.",
    "Use a fire extinguisher only on a small fire and only if your way out stays clear behind you.",
    "Pull the pin, aim at the base of the fire, squeeze the handle and sweep from side to side.",
    "Red fire extinguishers hold water and must never be used on electrical fires.",
    "Black carbon dioxide extinguishers are the ones for electrical fires in the server room.",
    "Fire blankets are kept in the kitchen for fat and oil fires in a pan.",
    "The fire alarm is tested every Monday at ten in the morning with a short ring.",
    "A fire drill happens twice a year without warning, and everyone takes part.",
    "During the last fire drill the building was empty in four minutes; our target is three.",
    "Colleagues who need help on the stairs have a personal evacuation plan with a named buddy.",
    "Visitors leave the building with the person they came to see during a fire alarm.",
    "Fire doors must never be wedged open, even on hot summer days.",
    "Keep the corridors and the fire exits free of boxes, bikes and chairs at all times.",
    "Report a damaged fire extinguisher or a blocked fire exit to the office manager the same day.",
    "Overloaded power strips start many office fires, so never chain one power strip into another.",
    "Switch off heaters and coffee machines at the end of the day to prevent fires at night.",
    "Smoking is allowed only in the shelter outside, far from the fire exits.",
    "If you discover a fire, press the red fire alarm button on the wall and shout fire.",
    "Then call the fire brigade on the emergency number, even if you think someone already has.",
    "The fire panel at reception shows which zone of the building raised the alarm.",
    "Reception prints the visitor list and brings it to the assembly point during a fire alarm.",
    "After every fire alarm, the fire wardens meet to note what went well and what did not.",
    "That is the end of the fire safety training; thank you for listening.",
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
    segment_vectors = embed_texts(segment_texts(video.segments))
    with transaction.atomic():  # as ingestion does: the knowledge base row is locked while chunks are written
        store_chunks(video, chunks, vectors)
        do_store_segment_vectors(video, segment_vectors, active_embedding_model())
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
