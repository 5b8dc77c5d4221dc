"""Celery tasks of the ingest app: they take ids, call services, and chain the pipeline's steps.

Every task goes to the shared queue, served by every node's worker; downloads are bounded per node by the
download slots, not by queues.
"""
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from assistant import selectors as assistant_selectors
from assistant.tasks import summarize_video
from ingest import selectors, services
from ingest.models import Job


@shared_task(ignore_result=True)
def sync_all_sources():
    """The nightly run (a PeriodicTask, editable in the admin): resume stalled jobs and summaries, then list
    every source."""
    for job_id, stage in services.do_release_abandoned_jobs():
        send_step(job_id, stage)
    for video_id in assistant_selectors.videos_to_summarize():
        summarize_video.delay(video_id)
    for source_id in selectors.source_ids_to_sync():
        sync_source.delay(source_id)


@shared_task(ignore_result=True)
def sync_source(source_id):
    for job_id in services.do_sync_source(source_id):
        transcribe_video.delay(job_id)


@shared_task(ignore_result=True)
def transcribe_video(job_id):
    try:
        ready = services.do_transcribe_video(job_id)
    except services.RetryLater as later:
        transcribe_video.apply_async((job_id,), countdown=later.delay_s)
        return
    if ready:
        embed_video.delay(job_id)


@shared_task(ignore_result=True)
def embed_video(job_id):
    if services.do_embed_video(job_id):
        summarize_video.delay(selectors.video_id_of_job(job_id))


def send_step(job_id, stage):
    step = transcribe_video if stage in Job.TRANSCRIBE_STAGES else embed_video
    step.delay(job_id)


@worker_ready.connect
def resume_jobs_of_dead_processes(**kwargs):
    """A node's worker that starts (again) takes back what its killed predecessor was doing."""
    for job_id, stage in services.do_release_abandoned_jobs(settings.NODE_NAME):
        send_step(job_id, stage)
