"""Writes of the ingest app: subscriptions, source syncs, the steps of each video's pipeline, its summary.

A pipeline step first claims its job (and the summary its row) with a lease, a conditional UPDATE, so a
redelivered or duplicated task message runs the step once. The lease records the owning process; a job whose
owner died is handed back and sent again, never lost.
"""
import contextlib
import logging
import shutil
import time
from datetime import timedelta

import numpy as np
import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inference.plumbing.leases import claim_for_this_process, holder_is_dead
from inference.plumbing.redis import redis_client
from inference.services import do_fetch_model
from ingest import discovery, media
from ingest.chunking import chunk_segments
from ingest.download_slots import NoFreeSlot, download_slot
from ingest.embedding import active_embedding_model, embed_texts, segment_texts
from ingest.models import (Chunk, Job, KnowledgeBase, RemovedChunk, SegmentVectors, Source, Subscription, Video,
                           VideoSummary)
from ingest.replica import current_replica
from ingest.transcription import subtitle_segments, transcribe
from ingest.urlsafety import UnsafeUrl, check_public_url, public_connections_only

logger = logging.getLogger(__name__)

RETRY_BASE_DELAY_S = 30
NO_SLOT_DELAY_S = 15
REDIS_RETRY_DELAY_S = 5
NO_SPACE_RETRY_DELAY_S = 60
PROGRESS_INTERVAL_S = 1.0
EMBEDDING_BATCH = 16
# Remembers which run of Redis the last look at the broker saw; gone when Redis came back empty.
BROKER_RUN_KEY = "kotatsu:ingest:broker-run-id"
# A second re-listing window: feeds date items by day and clocks differ; known videos are ignored anyway.
RESYNC_OVERLAP = timedelta(days=1)


class RetryLater(Exception):
    def __init__(self, delay_s):
        super().__init__(f"retry in {delay_s} s")
        self.delay_s = delay_s


class JobLost(Exception):
    """This process no longer owns the job (it was handed to another worker); stop without writing."""


def do_subscribe(user, url):
    """Subscribe the user to the source at `url`; return (source, created). Raises UnsafeUrl."""
    url = check_public_url(url.strip(), allow_private=settings.ALLOW_PRIVATE_URLS)
    source, created = Source.objects.get_or_create(url=url)
    Subscription.objects.get_or_create(user=user, source=source)
    return source, created


def do_unsubscribe(user, source_id):
    """The source's videos stay in the shared knowledge base; only the user's subscription goes."""
    Subscription.objects.filter(user=user, source_id=source_id).delete()


def do_sync_source(source_id):
    """List the source's new videos and create their jobs; return the ids of the jobs to start."""
    source = Source.objects.filter(pk=source_id).first()
    if source is None:  # deleted since the sync was requested
        return []
    started_at = timezone.now()
    newer_than = source.last_synced_at - RESYNC_OVERLAP if source.last_synced_at else None
    try:
        check_public_url(source.url, allow_private=settings.ALLOW_PRIVATE_URLS)
        with fetching_from_users_urls():
            listing = discovery.discover(
                source.url,
                newer_than=newer_than,
                backfill_days=settings.INGEST_BACKFILL_DAYS,
                backfill_videos=settings.INGEST_BACKFILL_VIDEOS,
            )
    except (discovery.DiscoveryError, UnsafeUrl) as error:
        Source.objects.filter(pk=source_id).update(last_sync_error=str(error))
        return []
    job_ids = [job_id for found in listing.videos if (job_id := record_video(source, found))]
    Source.objects.filter(pk=source_id).update(
        title=source.title or listing.title[:500], last_synced_at=started_at, last_sync_error=""
    )
    return job_ids


def fetching_from_users_urls():
    """Connections only to public addresses while yt-dlp fetches what users submitted, unless private URLs
    are allowed (LAN media servers, tests)."""
    return contextlib.nullcontext() if settings.ALLOW_PRIVATE_URLS else public_connections_only()


def record_video(source, found):
    """Store a discovered video once per (extractor, id); return its new job's id, or None when known."""
    video, created = Video.objects.get_or_create(
        extractor=found.extractor,
        video_id=found.video_id,
        defaults={
            "url": found.url,
            "title": found.title[:500],
            "duration_s": found.duration_s,
            "published_at": found.published_at,
        },
    )
    video.sources.add(source)
    stage = Job.SKIPPED if found.skip_reason else Job.DISCOVERED
    job, created = Job.objects.get_or_create(video=video, defaults={"stage": stage, "error": found.skip_reason})
    if created:
        return job.pk if stage == Job.DISCOVERED else None
    # A stream skipped while live is ingested once it is listed as an ordinary video.
    if stage == Job.DISCOVERED and Job.objects.filter(pk=job.pk, stage=Job.SKIPPED).update(stage=Job.DISCOVERED, error="") == 1:
        return job.pk
    return None


def do_transcribe_video(job_id):
    """Download the audio and transcribe it (or take the video's own subtitles); True when ready to embed."""
    run = JobRun.claim(job_id, Job.TRANSCRIBE_STAGES)
    if run is None:
        return False
    workdir = settings.AUDIO_TMP_DIR / f"job-{job_id}"
    try:
        segments, language, origin = run.fetch_transcript(workdir)
        if segments is None:
            return False
        Video.objects.filter(pk=run.job.video_id).update(segments=segments, language=language, transcript_origin=origin)
        run.release(Job.CHUNKING)
        return True
    except NoFreeSlot:
        run.release(Job.DISCOVERED)
        raise RetryLater(NO_SLOT_DELAY_S) from None
    except redis.RedisError as error:
        # Redis went away under the step (download slots, model fetches): not the video's fault, no attempt counted.
        raise run.interrupted_by_redis(error, Job.DISCOVERED) from None
    except media.MediaError as error:
        if error.no_space:
            raise run.waiting_for_space(str(error)) from None
        return run.fail(str(error), transient=error.transient)
    except UnsafeUrl as error:
        return run.fail(str(error), transient=False)
    except JobLost:
        return False
    except Exception as error:
        logger.exception("transcribing job %s failed", job_id)
        return run.fail(f"{type(error).__name__}: {error}", transient=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def do_embed_video(job_id):
    """Chunk the transcript, embed the chunks and store them with the job's last stage in one transaction,
    so an interrupted run leaves either nothing or the complete set, never a duplicate."""
    run = JobRun.claim(job_id, Job.EMBED_STAGES)
    if run is None:
        return False
    try:
        run.advance(Job.CHUNKING)
        chunks = chunk_segments(run.job.video.segments)
        run.advance(Job.EMBEDDING)
        model_name = active_embedding_model()
        # The segments' vectors too, so that citing and searching moments never embed a transcript later.
        segments = segment_texts(run.job.video.segments)
        vectors = run.embedded([chunk.text for chunk in chunks] + segments, model_name)
        with transaction.atomic():
            store_chunks(run.job.video, chunks, vectors[:len(chunks)], embedded_with=model_name)
            if segments:
                do_store_segment_vectors(run.job.video, np.array(vectors[len(chunks):]), model_name)
            run.release(Job.INDEXED, percent=100.0, error="")
    except redis.RedisError as error:
        raise run.interrupted_by_redis(error, Job.CHUNKING) from None
    except JobLost:
        return False
    except Exception as error:
        logger.exception("embedding job %s failed", job_id)
        return run.fail(f"{type(error).__name__}: {error}", transient=False)
    current_replica()
    return True


def store_chunks(video, chunks, vectors, embedded_with=None):
    """Replace the video's chunks. `embedded_with`: the model the vectors were made with, if it may no longer be
    the active one."""
    knowledge_base = KnowledgeBase.locked()
    if embedded_with is not None and embedded_with != active_embedding_model():
        # A switch of embedding model completed while they were embedded; none can complete under the lock.
        vectors = embed_texts([chunk.text for chunk in chunks])
    forget_chunks(video)
    Chunk.objects.bulk_create(
        Chunk(
            video=video,
            position=position,
            start_s=chunk.start_s,
            end_s=chunk.end_s,
            text=chunk.text,
            segment_times=chunk.segment_times,
            vector=vector.tobytes(),
        )
        for position, (chunk, vector) in enumerate(zip(chunks, vectors))
    )
    knowledge_base.bump()


def do_store_segment_vectors(video, vectors, model_name):
    """Keep the vectors of the video's transcript segments (float32 [len(video.segments), dims]) by model_name."""
    SegmentVectors.objects.update_or_create(
        video=video, defaults={"model": model_name, "dims": vectors.shape[1], "vectors": vectors.tobytes()})


def forget_chunks(video):
    """Delete a video's chunks and record their ids for the replicas. Call with the KnowledgeBase lock held."""
    chunk_ids = list(video.chunks.values_list("id", flat=True))
    RemovedChunk.objects.bulk_create(RemovedChunk(chunk_id=chunk_id) for chunk_id in chunk_ids)
    video.chunks.all().delete()


def do_remove_video(video):
    """Remove a video, its job, its chunks and (through the replicas' catch-up) its vectors."""
    with transaction.atomic():
        knowledge_base = KnowledgeBase.locked()
        forget_chunks(video)
        video.delete()
        knowledge_base.bump()


def broker_lost_its_messages():
    """True when Redis is another run than at the last look (restarted: a new run id) or came back without
    its data (the key remembering the run is gone): the task messages queued before may all be gone."""
    client = redis_client()
    run_id = client.info("server")["run_id"]
    return (client.getset(BROKER_RUN_KEY, run_id) or b"").decode() != run_id


def resend_limit():
    return timezone.now() - timedelta(seconds=settings.INGEST_RESEND_AFTER_S)


def do_release_abandoned_jobs(node_name=None, messages_lost=False):
    """Hand back jobs whose owner died (on `node_name` only, e.g. at that node's worker start) and, without a
    node name, the waiting jobs whose task message was lost (all of them when the broker lost its messages,
    else those that waited past INGEST_RESEND_AFTER_S); return [(job_id, stage)] to send again. A job sent
    twice runs once (its steps claim it with a conditional UPDATE)."""
    owned = Job.objects.exclude(stage__in=Job.FINAL_STAGES).exclude(owner="")
    if node_name:
        owned = owned.filter(owner__startswith=f"{node_name}:")
    released = [(job.pk, job.stage) for job in owned.only("pk", "stage", "owner", "heartbeat_at") if released_from_dead(job)]
    if node_name is None:
        waiting = Job.objects.exclude(stage__in=Job.FINAL_STAGES).filter(owner="")
        if not messages_lost:
            waiting = waiting.filter(updated_at__lt=resend_limit())
        resent = list(waiting.values_list("pk", "stage"))
        # Sent again now, so not again before another INGEST_RESEND_AFTER_S while it waits in a long queue.
        Job.objects.filter(pk__in=[job_id for job_id, _ in resent], owner="").update(updated_at=timezone.now())
        released += resent
    return released


def released_from_dead(job):
    """Hand back the job (an unfinished one with an owner) when its owner died; True when this call did."""
    return holder_is_dead(job.owner, job.heartbeat_at) and Job.objects.filter(pk=job.pk, owner=job.owner).update(owner="") == 1


def do_take_back_jobs_of_source(source_id):
    """The source's unfinished jobs that no live process holds, a dead owner's ones handed back, in the order
    they were discovered: [(job_id, stage)], for `ingest --inline` to run here. Without it, a second run after
    an interrupted one (Ctrl-C, a crash) would leave them waiting for a worker the inline command does not need.
    A job a live worker holds stays its own; one waiting for a worker's task message may be run by both, and
    its steps' claims make that harmless."""
    unfinished = Job.objects.filter(video__sources=source_id).exclude(stage__in=Job.FINAL_STAGES).order_by("pk")
    return [
        (job.pk, job.stage)
        for job in unfinished.only("pk", "stage", "owner", "heartbeat_at")
        if not job.owner or released_from_dead(job)
    ]


def do_release_lost_summaries(messages_lost=False):
    """Indexed videos whose summary is unwritten and whose task message was lost (all of them when the broker
    lost its messages, else those offered longer than INGEST_RESEND_AFTER_S ago); return their ids to send again."""
    unwritten = Video.objects.filter(job__stage=Job.INDEXED).filter(
        Q(summary__isnull=True) | Q(summary__written_at__isnull=True)
    )
    if not messages_lost:
        limit = resend_limit()
        unwritten = unwritten.filter(job__updated_at__lt=limit).filter(
            Q(summary__isnull=True) | Q(summary__claimed_at__isnull=True) | Q(summary__claimed_at__lt=limit)
        )
    video_ids = list(unwritten.values_list("pk", flat=True))
    for video_id in video_ids:
        VideoSummary.objects.get_or_create(video_id=video_id)
    # An unclaimed row's claimed_at records when it was last offered, so it is offered again only past the limit.
    VideoSummary.objects.filter(video_id__in=video_ids, summarizer="").update(claimed_at=timezone.now())
    return video_ids


def do_retry_job(job_id):
    """Send a failed job through the pipeline again from the start; True when it was failed."""
    return Job.objects.filter(pk=job_id, stage=Job.FAILED).update(
        stage=Job.DISCOVERED, percent=0.0, error="", attempts=0, owner=""
    ) == 1


class JobRun:
    """A job claimed by this process. Every write is conditional on still owning it (else JobLost)."""

    def __init__(self, job, owner):
        self.job = job
        self.owner = owner
        self.last_write = 0.0

    @classmethod
    def claim(cls, job_id, stages):
        owner = claim_for_this_process(Job.objects.filter(pk=job_id, stage__in=stages), "owner", "heartbeat_at")
        if owner is None:
            return None
        return cls(Job.objects.select_related("video").get(pk=job_id), owner)

    def write(self, **fields):
        updated = Job.objects.filter(pk=self.job.pk, owner=self.owner).update(heartbeat_at=timezone.now(), **fields)
        if not updated:
            raise JobLost(self.job.pk)
        for name, value in fields.items():
            setattr(self.job, name, value)
        self.last_write = time.monotonic()

    def advance(self, stage):
        self.write(stage=stage, percent=0.0)

    def progress(self, percent):
        """Record progress at most once per PROGRESS_INTERVAL_S; it doubles as the owner's heartbeat."""
        if time.monotonic() - self.last_write >= PROGRESS_INTERVAL_S:
            self.write(percent=min(100.0, percent))

    def embedded(self, texts, model_name):
        """The texts' vectors, EMBEDDING_BATCH at a time, recording the percent done after each: a long video's
        embedding moves on the page rather than standing at 0% until it is all done."""
        vectors = []
        for start in range(0, len(texts), EMBEDDING_BATCH):
            vectors.extend(embed_texts(texts[start:start + EMBEDDING_BATCH], model_name))
            self.progress(100.0 * len(vectors) / len(texts))
        return vectors

    def release(self, stage, **fields):
        self.write(stage=stage, owner="", **{"percent": 0.0, **fields})

    def interrupted_by_redis(self, error, stage):
        """Hand the job back at `stage`; return the RetryLater to raise (its message goes out once Redis is back,
        and if that fails too, beat's resend sweep sends it)."""
        logger.warning("job %s handed back: Redis went away under it (%s)", self.job.pk, error)
        self.release(stage)
        return RetryLater(REDIS_RETRY_DELAY_S)

    def waiting_for_space(self, message):
        """Hand the job back with the disk's one line, no attempt counted: it goes on when space returns."""
        self.write(owner="", error=message)
        return RetryLater(NO_SPACE_RETRY_DELAY_S)

    def fail(self, message, transient):
        """Record a failure: a transient one is retried with exponential backoff (RetryLater), up to
        INGEST_MAX_ATTEMPTS; a permanent one ends the job as failed. Returns False (nothing to run next)."""
        attempts = self.job.attempts + 1
        if transient and attempts < settings.INGEST_MAX_ATTEMPTS:
            self.write(owner="", attempts=attempts, error=message)
            raise RetryLater(RETRY_BASE_DELAY_S * 2 ** (attempts - 1))
        self.write(owner="", attempts=attempts, error=message, stage=Job.FAILED)
        return False

    def fetch_transcript(self, workdir):
        """(segments, language, origin), or (None, None, None) when the video is refused (job finished)."""
        video = self.job.video
        slot = download_slot(redis_client(), settings.NODE_NAME, settings.INGEST_DOWNLOADS_PER_NODE)
        with slot as keep_slot, fetching_from_users_urls():
            self.advance(Job.DOWNLOADING)
            check_public_url(video.url, allow_private=settings.ALLOW_PRIVATE_URLS)
            # The listing may already tell the length: then an over-long video is not even probed.
            too_long = media.over_length_reason(video.duration_s, settings.INGEST_MAX_DURATION_S)
            if too_long:
                self.release(Job.FAILED, error=too_long)
                return None, None, None
            info = media.probe(video.url)
            # A feed states a duration its bare media links do not; either way it is known before downloading.
            info["duration"] = info.get("duration") or video.duration_s
            refusal = media.refusal_reason(info, settings.INGEST_MAX_DURATION_S)
            if refusal:
                skipped = info.get("live_status") in discovery.SKIPPED_LIVE_STATUSES
                self.release(Job.SKIPPED if skipped else Job.FAILED, error=refusal)
                return None, None, None
            Video.objects.filter(pk=video.pk).update(
                title=(video.title or info.get("title") or "")[:500], duration_s=info["duration"]
            )
            subtitles = settings.INGEST_USE_SUBTITLES and media.manual_subtitles_url(info, settings.INGEST_LANGUAGE)
            if subtitles:
                language, subtitles_url = subtitles
                return subtitle_segments(media.fetch_text(subtitles_url)), language, "subtitles"

            def on_download_progress(percent):
                keep_slot()
                self.progress(percent)

            audio = media.download_audio(info, workdir, on_progress=on_download_progress)
        duration_s = media.wav_duration_s(audio)
        Video.objects.filter(pk=video.pk).update(duration_s=duration_s)
        # Bare media links state no length before the download; the limit still holds for transcription.
        too_long = media.over_length_reason(duration_s, settings.INGEST_MAX_DURATION_S)
        if too_long:
            raise media.MediaError(too_long)
        self.advance(Job.TRANSCRIBING)
        segments, language = transcribe(
            str(do_fetch_model(settings.INGEST_WHISPER_MODEL)),
            audio,
            language=settings.INGEST_LANGUAGE,
            on_progress=lambda seconds: self.progress(100.0 * seconds / max(duration_s, 1e-6)),
        )
        return segments, language, f"whisper:{settings.INGEST_WHISPER_MODEL}"
