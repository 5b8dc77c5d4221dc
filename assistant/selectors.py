"""Reads of the assistant app."""
import numpy as np

from django.utils import timezone
from django.utils.translation import gettext as _

from assistant.answering import clock, link_at
from assistant.models import ApiKey, Conversation, DashboardVisit, LanguageChoice, Message, VideoMark
from ingest.embedding import embed_texts
from inference.models import ModelEntry
from ingest.models import Chunk, Job, Source, Video

WORTH_WATCHING_CANDIDATES = 50
INTEREST_QUESTIONS = 20
INTEREST_SOURCE_CHUNKS = 5000
INTEREST_MARKS = 50
# Scores are cosines between all-minilm vectors: a video from a followed source starts this much ahead; a
# watched video counts a little less than a stated interest; one close to a dismissed video loses its cosine.
FOLLOWED_SOURCE_BONUS = 0.15
WATCHED_WEIGHT = 0.8
NOT_INTERESTED_WEIGHT = 1.0
# Below these cosines a question or a watched video is too far from a video to be named as the reason for it
# (all-minilm: "How did revenue and churn develop?" is 0.34 from the sales review, 0.01 from the kitchen briefing).
QUESTION_REASON_SIMILARITY = 0.3
WATCHED_REASON_SIMILARITY = 0.3
QUESTION_IN_REASON_CHARS = 60


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
    """New videos for this employee, most interesting first, each with why: [{"video", "summary" (its
    VideoSummary or None), "moments" (its key moments with links), "reasons" (sentences in the page's language),
    "score"}].

    The videos indexed since `since` (all recent ones when None) that the employee has not marked. A video
    scores its best cosine (between its mean chunk vector and an interest: a followed source's mean vector, a
    recent question, a video they watched, the last weighted WATCHED_WEIGHT), plus FOLLOWED_SOURCE_BONUS when
    it comes from a source they follow, minus NOT_INTERESTED_WEIGHT times its cosine to the closest video they
    were not interested in; ties go to the most recently indexed."""
    marked = VideoMark.objects.filter(user=user)
    videos = (
        Video.objects.filter(job__stage=Job.INDEXED)
        .exclude(pk__in=marked.values("video_id"))
        .select_related("summary")
        .prefetch_related("sources")
        .order_by("-job__updated_at")
    )
    if since is not None:
        videos = videos.filter(job__updated_at__gt=since)
    videos = list(videos[:WORTH_WATCHING_CANDIDATES])
    if not videos:
        return []
    video_vectors = mean_chunk_vectors(Chunk.objects.filter(video__in=videos).values_list("video_id", "vector"))
    interests = Interests.of(user, marked)
    ranked = []
    for recency, video in enumerate(videos):
        score, reasons = interests.judge(video, video_vectors.get(video.pk))
        summary = getattr(video, "summary", None)
        ranked.append({"video": video, "summary": summary, "moments": key_moments(video, summary), "reasons": reasons,
                       "score": score, "recency": recency})
    ranked.sort(key=lambda item: (-item["score"], item["recency"]))
    return ranked[:limit]


def key_moments(video, summary):
    """The summary's key moments, each with its time as m:ss and a link opening the video there."""
    moments = summary.key_moments if summary is not None else []
    return [
        {"title": moment["title"], "clock": clock(moment["start_s"]), "url": link_at(video.url, moment["start_s"])}
        for moment in moments
    ]


class Interests:
    """What an employee cares about, as unit vectors: the sources they follow, their recent questions, the
    videos they watched; and what they do not: the videos they were not interested in."""

    def __init__(self, followed, source_vectors, questions, watched, dismissed):
        self.followed = followed  # {source id: source}
        self.source_vectors = source_vectors  # [s, d]
        self.questions = questions  # [(text, vector [d])]
        self.watched = watched  # [(title, vector [d])]
        self.dismissed = dismissed  # [x, d]

    @classmethod
    def of(cls, user, marks):
        followed = {source.pk: source for source in Source.objects.filter(subscriptions__user=user)}
        source_chunks = (
            Chunk.objects.filter(video__sources__in=list(followed))
            .order_by("-id")
            .values_list("video__sources", "vector")[:INTEREST_SOURCE_CHUNKS]
        )
        by_source = mean_chunk_vectors((source_id, vector) for source_id, vector in source_chunks if source_id in followed)
        questions = list(
            Message.objects.filter(conversation__user=user, role=Message.USER)
            .order_by("-id")
            .values_list("content", flat=True)[:INTEREST_QUESTIONS]
        )
        recent_marks = list(marks.order_by("-marked_at").values_list("video_id", "video__title", "kind")[:INTEREST_MARKS])
        marked_vectors = mean_chunk_vectors(
            Chunk.objects.filter(video_id__in=[video_id for video_id, _, _ in recent_marks]).values_list("video_id", "vector")
        )
        watched, dismissed = [], []
        for video_id, title, kind in recent_marks:
            if video_id in marked_vectors:
                if kind == VideoMark.WATCHED:
                    watched.append((title, marked_vectors[video_id]))
                else:
                    dismissed.append(marked_vectors[video_id])
        return cls(
            followed,
            stacked(list(by_source.values())),
            list(zip(questions, embed_texts(questions))) if questions else [],
            watched,
            stacked(dismissed),
        )

    def judge(self, video, vector):
        """(score, reasons) of a video whose unit mean chunk vector [d] is `vector` (None: it has no chunks)."""
        reasons = []
        followed_sources = [source for source in video.sources.all() if source.pk in self.followed]
        if followed_sources:
            reasons.append(_("from %(source)s, a source you follow") % {"source": followed_sources[0]})
        score = FOLLOWED_SOURCE_BONUS if followed_sources else 0.0
        if vector is None:
            return score, reasons
        likeness = [float(np.max(self.source_vectors @ vector))] if len(self.source_vectors) else []
        if self.questions:
            question, similarity = max(((text, float(v @ vector)) for text, v in self.questions), key=lambda pair: pair[1])
            likeness.append(similarity)
            if similarity >= QUESTION_REASON_SIMILARITY:
                reasons.append(_("you asked “%(question)s”") % {"question": shortened(question)})
        if self.watched:
            title, similarity = max(((title, float(v @ vector)) for title, v in self.watched), key=lambda pair: pair[1])
            likeness.append(WATCHED_WEIGHT * similarity)
            if similarity >= WATCHED_REASON_SIMILARITY:
                reasons.append(_("like “%(title)s”, which you watched") % {"title": title})
        score += max(likeness, default=0.0)
        if len(self.dismissed):
            score -= NOT_INTERESTED_WEIGHT * max(0.0, float(np.max(self.dismissed @ vector)))
        return score, reasons


def stacked(vectors):
    return np.stack(vectors) if vectors else np.zeros((0, 0), np.float32)


def shortened(text, length=QUESTION_IN_REASON_CHARS):
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


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
