"""Reads of the assistant app."""
import numpy as np

from django.utils import timezone

from assistant.models import ApiKey, Conversation, DashboardVisit, LanguageChoice, Message
from ingest.embedding import embed_texts
from inference.models import ModelEntry
from ingest.models import Chunk, Job, Video

WORTH_WATCHING_CANDIDATES = 50
INTEREST_QUESTIONS = 20
INTEREST_SOURCE_CHUNKS = 5000


def get_api_key(raw_key):
    """The key, with its user, when it authenticates: None for a missing, unknown or revoked key, or one of an
    inactive user."""
    if not raw_key or not raw_key.startswith(ApiKey.PREFIX):
        return None
    return (
        ApiKey.objects.select_related("user")
        .filter(key_hash=ApiKey.hash_raw_key(raw_key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )


def catalog_model_kinds():
    """{name: kind} of every catalog model: the API serves some by name and names the kind of the others."""
    return dict(ModelEntry.objects.order_by("kind", "name").values_list("name", "kind"))


def conversations_of(user):
    """The user's own conversations: looking one up through this gives another user's a 404."""
    return Conversation.objects.filter(user=user)


def dashboard_visit_start(user):
    """Where "new" begins for the employee's visit now, read without recording it (the page posts the visit)."""
    visit = DashboardVisit.objects.filter(user=user).first()
    return None if visit is None else visit.visit_start(timezone.now())


def worth_watching(user, since, limit=10):
    """Videos indexed since `since` (all recent ones when None), closest to the user's interests first:
    each scores its best cosine between its mean chunk vector and any interest (a subscribed source's
    mean vector, or one of the user's recent questions)."""
    videos = Video.objects.filter(job__stage=Job.INDEXED).select_related("summary").order_by("-job__updated_at")
    if since is not None:
        videos = videos.filter(job__updated_at__gt=since)
    videos = list(videos[:WORTH_WATCHING_CANDIDATES])
    if not videos:
        return []
    video_vectors = mean_chunk_vectors(Chunk.objects.filter(video__in=videos).values_list("video_id", "vector"))
    interests = interest_vectors(user)
    ranked = []
    for recency, video in enumerate(videos):
        vector = video_vectors.get(video.pk)
        score = float(np.max(interests @ vector)) if vector is not None and len(interests) else 0.0
        summary = getattr(video, "summary", None)
        ranked.append({"video": video, "score": score, "summary": summary.text if summary else "", "recency": recency})
    ranked.sort(key=lambda item: (-item["score"], item["recency"]))
    return ranked[:limit]


def interest_vectors(user):
    """Unit vectors [n, d] of what the user cares about: their sources' centroids and recent questions."""
    source_chunks = (
        Chunk.objects.filter(video__sources__subscriptions__user=user)
        .order_by("-id")
        .values_list("video__sources", "vector")[:INTEREST_SOURCE_CHUNKS]
    )
    by_source = mean_chunk_vectors(source_chunks)
    questions = list(
        Message.objects.filter(conversation__user=user, role=Message.USER)
        .order_by("-id")
        .values_list("content", flat=True)[:INTEREST_QUESTIONS]
    )
    vectors = list(by_source.values())
    if questions:
        vectors.extend(embed_texts(questions))
    return np.stack(vectors) if vectors else np.zeros((0, 0), np.float32)


def mean_chunk_vectors(rows):
    """{group: unit mean vector} from (group, stored chunk vector) rows."""
    groups = {}
    for group, vector in rows:
        groups.setdefault(group, []).append(np.frombuffer(bytes(vector), dtype=np.float32))
    means = {}
    for group, vectors in groups.items():
        mean = np.mean(vectors, axis=0)
        means[group] = mean / (np.linalg.norm(mean) or 1.0)
    return means


def chosen_language(user):
    """The interface language the user chose, or "" when their browser decides."""
    return LanguageChoice.objects.filter(user=user).values_list("language", flat=True).first() or ""
