"""Celery tasks of the ingest app: they take ids, call services, and send the pipeline's next step.

Every task goes to the shared queue, served by every node's worker; downloads are bounded per node by the
download slots, not by queues. `run_here` runs the same tasks in the calling process instead (`manage.py
ingest --inline`): one pipeline, whoever runs it.
"""
import threading
import time

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from inference.tasks import resend_lost_fetches
from ingest import reembedding, selectors, services, summaries
from ingest.models import Job

# The steps waiting to run in this thread, as (due time, task, args), while run_here is running them.
in_process = threading.local()


# How often beat sends resend_lost_work (ingest migration 0005); a sweep that waited longer is superseded.
RESEND_SWEEP_INTERVAL_S = 30
# A step finished while Redis is away still sends the next one when Redis is back within about two minutes.
PUBLISH_RETRY_POLICY = {"max_retries": 30, "interval_start": 0.5, "interval_step": 1.0, "interval_max": 5.0}


@shared_task(ignore_result=True)
def sync_all_sources():
    """The nightly run (a PeriodicTask, editable in the admin): resume stalled jobs and summaries, then list
    every source."""
    for job_id, stage in services.do_release_abandoned_jobs():
        send_step(job_id, stage)
    for video_id in selectors.videos_to_summarize():
        send(summarize_video, video_id)
    for source_id in selectors.source_ids_to_sync():
        send(sync_source, source_id)


@shared_task(ignore_result=True, expires=RESEND_SWEEP_INTERVAL_S)
def resend_lost_work():
    """Beat's sweep: no job, summary or model fetch waits for a task message that no longer exists. After Redis
    came back without its messages every waiting one is sent again at once, else those that waited past
    INGEST_RESEND_AFTER_S; the claims make a duplicate message harmless."""
    messages_lost = services.broker_lost_its_messages()
    for job_id, stage in services.do_release_abandoned_jobs(messages_lost=messages_lost):
        send_step(job_id, stage)
    for video_id in services.do_release_lost_summaries(messages_lost=messages_lost):
        send(summarize_video, video_id)
    if reembedding.do_release_lost_reembedding(resend_before=None if messages_lost else services.resend_limit()):
        send(reembed_chunks)
    # Model fetches are the inference app's; this sweep sends them because it alone tells a Redis run apart.
    resend_lost_fetches(services.resend_limit(), messages_lost=messages_lost)


@shared_task(ignore_result=True)
def sync_source(source_id):
    for job_id in services.do_sync_source(source_id):
        send(transcribe_video, job_id)


@shared_task(ignore_result=True)
def transcribe_video(job_id):
    try:
        ready = services.do_transcribe_video(job_id)
    except services.RetryLater as later:
        send(transcribe_video, job_id, delay_s=later.delay_s)
        return
    if ready:
        send(embed_video, job_id)


@shared_task(ignore_result=True)
def embed_video(job_id):
    try:
        indexed = services.do_embed_video(job_id)
    except services.RetryLater as later:
        send(embed_video, job_id, delay_s=later.delay_s)
        return
    if indexed:
        send(summarize_video, selectors.video_id_of_job(job_id))


@shared_task(ignore_result=True)
def summarize_video(video_id):
    """Sent when the video is indexed (and by the nightly sync for any left without a summary)."""
    summaries.do_summarize_video(video_id)


@shared_task(ignore_result=True)
def reembed_chunks():
    """Sent when an operator switches the embedding model (admin), and again for a switch whose worker died."""
    reembedding.do_reembed_chunks()


def send_step(job_id, stage):
    send(transcribe_video if stage in Job.TRANSCRIBE_STAGES else embed_video, job_id)


def send(task, *args, delay_s=None):
    """Send the next step to the workers, or, while run_here runs, to the steps this process runs next."""
    queue = getattr(in_process, "queue", None)
    if queue is None:
        task.apply_async(args, countdown=delay_s, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    else:
        queue.append((time.monotonic() + (delay_s or 0), task, args))


def run_here(task, *args):
    """Run the task in this process, then every step it sends, in order, waiting out their delays as the
    workers would."""
    in_process.queue = [(time.monotonic(), task, args)]
    try:
        while in_process.queue:
            due, task, args = in_process.queue.pop(0)
            time.sleep(max(0.0, due - time.monotonic()))
            task(*args)
    finally:
        del in_process.queue


@worker_ready.connect
def resume_jobs_of_dead_processes(**kwargs):
    """A node's worker that starts (again) takes back what its killed predecessor was doing."""
    for job_id, stage in services.do_release_abandoned_jobs(settings.NODE_NAME):
        send_step(job_id, stage)
    if reembedding.do_release_lost_reembedding(node_name=settings.NODE_NAME):
        send(reembed_chunks)
