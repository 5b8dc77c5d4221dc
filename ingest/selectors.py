"""Reads of the ingest app."""
from django.conf import settings
from django.db.models import Count, Q

from inference.services import do_fetch_model
from ingest.embedding import embed
from ingest.models import Chunk, Job, Source
from ingest.replica import current_replica


def source_ids_to_sync():
    """Sources somebody still subscribes to."""
    return list(Source.objects.filter(subscriptions__isnull=False).distinct().values_list("pk", flat=True))


def sources_with_progress(queryset=None):
    """Sources annotated with their video counts: total, indexed, failed or skipped, and in progress."""
    queryset = Source.objects.all() if queryset is None else queryset
    return queryset.annotate(
        video_count=Count("videos", distinct=True),
        indexed_count=Count("videos", filter=Q(videos__job__stage=Job.INDEXED), distinct=True),
        failed_count=Count("videos", filter=Q(videos__job__stage__in=[Job.FAILED, Job.SKIPPED]), distinct=True),
    )


def subscribed_sources(user):
    return sources_with_progress(Source.objects.filter(subscriptions__user=user))


def active_jobs(source_ids):
    return list(
        Job.objects.filter(video__sources__in=source_ids)
        .exclude(stage__in=Job.FINAL_STAGES)
        .select_related("video")
        .distinct()
    )


def video_id_of_job(job_id):
    return Job.objects.values_list("video_id", flat=True).get(pk=job_id)


def jobs_of_source(source_id):
    return list(Job.objects.filter(video__sources=source_id).select_related("video").order_by("pk"))


def search_knowledge_base(query, k=5):
    """The k chunks closest in meaning to the query, best first, as dicts ready for JSON."""
    query_vector = embed(str(do_fetch_model(settings.INGEST_EMBEDDING_MODEL)), [query])
    scores, ids = current_replica().search(query_vector, k)
    found = {chunk.pk: chunk for chunk in Chunk.objects.filter(pk__in=[int(i) for i in ids[0] if i >= 0]).select_related("video")}
    return [
        {
            "chunk_id": int(chunk_id),
            "video_id": found[chunk_id].video_id,
            "title": found[chunk_id].video.title,
            "url": found[chunk_id].video.url,
            "start_s": found[chunk_id].start_s,
            "end_s": found[chunk_id].end_s,
            "text": found[chunk_id].text,
            "score": round(float(score), 4),
        }
        for score, chunk_id in zip(scores[0], (int(i) for i in ids[0]))
        # A chunk deleted after the replica caught up is no longer an answer.
        if chunk_id in found
    ]
