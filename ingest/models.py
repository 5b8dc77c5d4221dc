import numpy as np
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import get_language_info
from django.utils.translation import gettext_lazy as _


class Source(models.Model):
    """A channel, playlist, feed or single video URL. Stored once, however many employees subscribe."""

    url = models.URLField(max_length=2000, unique=True)
    title = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Only videos published after the last successful sync are listed again.
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.TextField(blank=True)

    class Meta:
        ordering = ["title", "url"]

    def __str__(self):
        return self.title or self.url

    def spoken_languages(self):
        """The names of the languages its videos are spoken in, in the page's language."""
        codes = self.videos.exclude(language="").order_by("language").values_list("language", flat=True).distinct()
        return [language_name(code) for code in codes]


def language_name(code):
    """A language by its name in the page's language ("Japanese", "日本語"), or its code when Django does not
    know it (whisper detects about a hundred languages)."""
    try:
        return get_language_info(code)["name_translated"]
    except KeyError:
        return code


class Subscription(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriptions")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="subscriptions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "source"], name="one_subscription_per_user_and_source")]

    def __str__(self):
        return f"{self.user} → {self.source}"


class Video(models.Model):
    """One media item, identified by yt-dlp's (extractor, id) so that two sources reaching it share it."""

    extractor = models.CharField(max_length=100)
    video_id = models.CharField(max_length=500)
    url = models.URLField(max_length=2000)
    title = models.CharField(max_length=500, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    sources = models.ManyToManyField(Source, related_name="videos")
    language = models.CharField(max_length=20, blank=True)
    transcript_origin = models.CharField(max_length=100, blank=True)  # "whisper:<model>" or "subtitles"
    # Whisper segments as [{"start": s, "end": s, "text": "..."}], kept so that re-chunking needs no audio.
    segments = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["extractor", "video_id"], name="one_video_per_extractor_id")]
        ordering = ["-published_at", "-id"]

    def __str__(self):
        return self.title or f"{self.extractor}:{self.video_id}"

    @property
    def spoken_language(self):
        """The language of its transcript by name: whisper's detection, INGEST_LANGUAGE, or the subtitles'."""
        return language_name(self.language) if self.language else ""


class Job(models.Model):
    """The ingestion pipeline of one video: its stage, progress, and who is working on it."""

    DISCOVERED = "discovered"
    DOWNLOADING = "downloading"
    TRANSCRIBING = "transcribing"
    CHUNKING = "chunking"
    EMBEDDING = "embedding"
    INDEXED = "indexed"
    FAILED = "failed"
    SKIPPED = "skipped"
    STAGES = [
        (DISCOVERED, _("discovered")),
        (DOWNLOADING, _("downloading")),
        (TRANSCRIBING, _("transcribing")),
        (CHUNKING, _("chunking")),
        (EMBEDDING, _("embedding")),
        (INDEXED, _("indexed")),
        (FAILED, _("failed")),
        (SKIPPED, _("skipped")),
    ]
    # Each Celery task owns a run of consecutive stages; a job waits between tasks with no owner.
    TRANSCRIBE_STAGES = (DISCOVERED, DOWNLOADING, TRANSCRIBING)
    EMBED_STAGES = (CHUNKING, EMBEDDING)
    FINAL_STAGES = (INDEXED, FAILED, SKIPPED)

    video = models.OneToOneField(Video, on_delete=models.CASCADE, related_name="job")
    stage = models.CharField(max_length=20, choices=STAGES, default=DISCOVERED)
    percent = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # "<node>:<pid>:<process start time>" of the worker process running a stage, empty while waiting.
    owner = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.video}: {self.stage} {self.percent:.0f}%"

    @property
    def is_finished(self):
        return self.stage in self.FINAL_STAGES

    @property
    def progress_label(self):
        """The stage in the page's language, with the error of a failed job or the percent of a running one."""
        if self.stage in (self.FAILED, self.SKIPPED):
            return f"{self.get_stage_display()}: {self.error}"
        if self.is_finished:
            return self.get_stage_display()
        return f"{self.get_stage_display()} {self.percent:.0f}%"

    def as_dict(self):
        return {
            "job_id": self.pk,
            "video_id": self.video_id,
            "title": self.video.title,
            "url": self.video.url,
            "stage": self.stage,
            "percent": round(self.percent, 1),
            "attempts": self.attempts,
            "error": self.error,
        }


class Chunk(models.Model):
    """A time window of a transcript and its embedding. The database is the source of truth for vectors:
    every node's FAISS replica is built and kept in sync from these rows."""

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    start_s = models.FloatField()
    end_s = models.FloatField()
    text = models.TextField()
    # [[start, end], ...] of the transcript segments the chunk is made of.
    segment_times = models.JSONField(default=list)
    vector = models.BinaryField()

    class Meta:
        ordering = ["video", "position"]
        constraints = [models.UniqueConstraint(fields=["video", "position"], name="one_chunk_per_video_position")]

    def __str__(self):
        return f"{self.video} [{self.start_s:.0f}-{self.end_s:.0f} s]"

    @property
    def vector_array(self):
        return np.frombuffer(bytes(self.vector), dtype=np.float32)


class SegmentVectors(models.Model):
    """The vectors of a video's transcript segments (Video.segments, in order) by one embedding model, so that a
    citation or a search moment is placed on the segment that says it without embedding the transcript while the
    asker waits. Written at ingestion; a video ingested before them, or embedded with another model than the
    active one, gets them the first time they are needed (ingest.segment_vectors)."""

    video = models.OneToOneField(Video, on_delete=models.CASCADE, primary_key=True, related_name="segment_vectors")
    model = models.CharField(max_length=128)  # the catalog name of the embedding model
    dims = models.PositiveIntegerField()
    vectors = models.BinaryField()  # float32 [len(video.segments), dims], row-major

    class Meta:
        verbose_name_plural = "segment vectors"

    def __str__(self):
        return f"segment vectors of {self.video_id} by {self.model}"

    @property
    def array(self):
        return np.frombuffer(bytes(self.vectors), dtype=np.float32).reshape(-1, self.dims)  # [segments, dims]


class RemovedChunk(models.Model):
    """Chunk ids deleted from the database, in deletion order, so replicas remove them incrementally."""

    chunk_id = models.BigIntegerField()


class KnowledgeBase(models.Model):
    """The single row whose lock serializes writes of chunks, so chunk ids become visible in id order and a
    replica can catch up with `id > last seen id` alone. Its revision tells replicas cheaply if anything changed."""

    revision = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    @classmethod
    def locked(cls):
        cls.objects.get_or_create(pk=1)
        return cls.objects.select_for_update().get(pk=1)

    def bump(self):
        self.revision += 1
        self.updated_at = timezone.now()
        self.save(update_fields=["revision", "updated_at"])


class VideoSummary(models.Model):
    """What a video says and where, written when it is indexed: a summary, its key moments (chapters) and topics.

    The summary is the LLM's (abstractive) when its text passes the grounding checks, else sentences of the
    transcript itself (extractive), and the page says which. The row exists from the moment its task runs; the
    task leases it by setting `summarizer` with a conditional UPDATE, as the pipeline's jobs are leased, so a
    redelivered task message writes it once."""

    ABSTRACTIVE = "abstractive"
    EXTRACTIVE = "extractive"
    KINDS = [(ABSTRACTIVE, _("written by the LLM")), (EXTRACTIVE, _("sentences of the transcript"))]

    video = models.OneToOneField(Video, on_delete=models.CASCADE, related_name="summary")
    text = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=KINDS, default=EXTRACTIVE)
    # The catalog name of the LLM that wrote the text, titles or topics (empty when it wrote none of them).
    model = models.CharField(max_length=200, blank=True)
    # Why the text is extractive although an LLM was asked: unavailable, or the check its text failed.
    fallback_reason = models.TextField(blank=True)
    # [{"title": "...", "start_s": s}, ...] in spoken order; each start_s is the start of a transcript segment.
    key_moments = models.JSONField(default=list, blank=True)
    topics = models.JSONField(default=list, blank=True)  # a few short labels
    # "<node>:<pid>:<process start time>" of the process writing it, empty while nobody is.
    summarizer = models.CharField(max_length=200, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    written_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table the assistant app created before summaries moved to ingest: the move kept its rows.
        db_table = "assistant_videosummary"
        verbose_name_plural = "video summaries"

    def __str__(self):
        return f"summary of {self.video}"

    @property
    def is_extractive(self):
        return self.kind == self.EXTRACTIVE


class EmbeddingSetting(models.Model):
    """The cluster's embedding model, one row (INGEST_EMBEDDING_MODEL is its initial value; the admin changes it),
    and the switch to another model.

    Chunk.vector holds the vectors of `active_model`; they are generation `active_generation`, which each node's
    index snapshot records. Choosing another model sets `target_model`: the re-embedding job (ingest.reembedding)
    embeds the chunks again in chunk id order, storing ReembeddedVector rows and `reembedded_through`, the last
    chunk id done, so a job taken over from a killed worker resumes there. It is leased like a pipeline job
    (`owner`, `heartbeat_at`). When no chunk is left, the new vectors replace the old ones and the target becomes
    active in one transaction; until then every query embeds with the active model and searches its index."""

    active_model = models.CharField(max_length=128)
    active_generation = models.PositiveIntegerField(default=0)
    target_model = models.CharField(max_length=128, blank=True)
    target_generation = models.PositiveIntegerField(default=0)
    reembedded_through = models.BigIntegerField(default=0)
    reembedded_count = models.PositiveIntegerField(default=0)
    percent = models.FloatField(default=0.0)
    # "<node>:<pid>:<process start time>" of the process re-embedding, empty while nobody is.
    owner = models.CharField(max_length=200, blank=True)
    # When the owner last showed it was alive; while nobody owns it, when the job was last offered to the workers.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    switched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "embedding model"
        verbose_name_plural = "embedding model"

    def __str__(self):
        if self.target_model:
            return f"{self.active_model} → {self.target_model} ({self.percent:.0f}%)"
        return self.active_model

    @classmethod
    def current(cls):
        """The row, created from INGEST_EMBEDDING_MODEL the first time it is needed."""
        return cls.objects.get_or_create(pk=1, defaults={"active_model": settings.INGEST_EMBEDDING_MODEL})[0]

    @classmethod
    def locked(cls):
        cls.current()
        return cls.objects.select_for_update().get(pk=1)

    @property
    def is_switching(self):
        return bool(self.target_model)

    @property
    def progress_label(self):
        if self.error:
            return f"{self.target_model}: {self.error}"
        if self.is_switching:
            return f"re-embedding with {self.target_model}: {self.reembedded_count} chunks, {self.percent:.0f}%"
        return ""


class ReembeddedVector(models.Model):
    """A chunk's vector under the target model of the switch in progress; gone once the switch completes."""

    chunk = models.OneToOneField(Chunk, on_delete=models.CASCADE, primary_key=True, related_name="reembedded")
    vector = models.BinaryField()


class ReembeddedSegmentVectors(models.Model):
    """A video's segment vectors under the target model of the switch in progress (as SegmentVectors holds them);
    they become its SegmentVectors when the switch completes, so no transcript is embedded at a question then."""

    video = models.OneToOneField(Video, on_delete=models.CASCADE, primary_key=True, related_name="reembedded_segments")
    dims = models.PositiveIntegerField()
    vectors = models.BinaryField()  # float32 [len(video.segments), dims], row-major
