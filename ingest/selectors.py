"""Reads of the ingest app."""
from django.db.models import Count, Q

from inference.models import ModelEntry
from ingest.models import Job, Source, Video


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


def videos_to_summarize():
    """Indexed videos without a written summary: their task message was lost, or its worker died."""
    unwritten = Q(summary__isnull=True) | Q(summary__written_at__isnull=True)
    return list(Video.objects.filter(unwritten, job__stage=Job.INDEXED).values_list("pk", flat=True))


def embedding_model_names():
    """The catalog's embedding models, which the cluster's embedding model is chosen from."""
    return list(ModelEntry.objects.filter(kind="embedding").order_by("name").values_list("name", flat=True))
