"""Celery tasks of the assistant app: they take ids and call services."""
from celery import shared_task

from assistant import selectors, services


@shared_task(ignore_result=True)
def summarize_new_videos():
    """Every minute (a PeriodicTask): a summary for each video indexed since the last run. One task does
    them all in turn, so a busy cluster never queues the same video twice."""
    for video_id in selectors.videos_to_summarize():
        services.do_summarize_video(video_id)
