"""Celery tasks of the assistant app: they take ids and call services."""
from celery import shared_task

from assistant import services


@shared_task(ignore_result=True)
def summarize_video(video_id):
    """Sent by ingestion when the video is indexed (and by the nightly sync for any left without one)."""
    services.do_summarize_video(video_id)
