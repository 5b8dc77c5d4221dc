import json
import threading
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from ingest import selectors, services, tasks
from ingest.urlsafety import UnsafeUrl
from inference.plumbing.config import ConfigError
from inference.plumbing.embedded_redis import ensure_redis

POLL_INTERVAL_S = 0.5
BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Subscribe to a channel, playlist, feed or video URL and ingest what it published. Listing happens "
        "here; the videos go to the workers, or are processed in this process with --inline."
    )

    def add_arguments(self, parser):
        parser.add_argument("url")
        parser.add_argument("--inline", action="store_true", help="run every step here, without a worker")
        parser.add_argument("--wait", action="store_true", help="show progress until every video is done")
        parser.add_argument("--json", dest="as_json", action="store_true", help="end with a JSON summary line")
        parser.add_argument("--user", help="the subscriber (default: the first administrator)")

    def handle(self, *args, url, inline=False, wait=False, as_json=False, user=None, **options):
        subscriber = find_user(user)
        try:
            source, _ = services.do_subscribe(subscriber, url)
        except UnsafeUrl as error:
            raise CommandError(f"refused {url}: {error}") from None
        job_ids = services.do_sync_source(source.pk)
        source.refresh_from_db()
        if source.last_sync_error:
            raise CommandError(f"cannot list {url}: {source.last_sync_error}")
        self.stdout.write(f"{source}: {len(job_ids)} new video(s)")
        if inline:
            embedded_redis = redis_for_inline_work()
            try:
                # The new videos and those an earlier run left unfinished (interrupted, or sent to workers that
                # never took them), unless a live process holds them.
                steps = services.do_take_back_jobs_of_source(source.pk)
                if resumed := [job_id for job_id, _ in steps if job_id not in job_ids]:
                    self.stdout.write(f"{len(resumed)} video(s) left unfinished before: taken up here")
                job_ids += resumed
                with ProgressBar(self.stdout, source.pk):
                    for job_id, stage in steps:
                        tasks.run_here(tasks.send_step, job_id, stage)  # the step its stage is at, run here
            finally:
                if embedded_redis is not None:
                    embedded_redis.terminate()
                    embedded_redis.wait()
        else:
            for job_id in job_ids:
                tasks.transcribe_video.delay(job_id)
            if wait:
                with ProgressBar(self.stdout, source.pk) as bar:
                    bar.wait_until_finished()
        jobs = selectors.jobs_of_source(source.pk)
        for job in jobs:
            self.stdout.write(f"  {job.video}: {job.progress_label}")
        if as_json:
            summary = {"source_id": source.pk, "url": source.url, "title": source.title, "jobs": [job.as_dict() for job in jobs]}
            self.stdout.write(json.dumps(summary, ensure_ascii=False))
        failed = [job for job in jobs if job.stage == job.FAILED and job.pk in job_ids]
        if failed:
            raise CommandError(f"{len(failed)} of {len(job_ids)} video(s) failed; the first: {failed[0].video}: {failed[0].error}")


def redis_for_inline_work():
    """Inline work still takes download slots in Redis: start the embedded one if nothing answers (one line if a
    configured REDIS_URL is down)."""
    try:
        return ensure_redis(settings.REDIS_URL, settings.REDIS_IS_EMBEDDED, settings.VAR_DIR / "redis", settings.LOG_DIR / "redis.log")
    except ConfigError as error:
        raise CommandError(f"{error} (--inline needs Redis for download slots; unset REDIS_URL to use the embedded one)") from None


def find_user(username):
    User = get_user_model()
    if username:
        try:
            return User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None
    administrator = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if administrator is None:
        raise CommandError("no administrator account to subscribe with: pass --user NAME")
    return administrator


class ProgressBar:
    """Redraws one line with the source's overall progress and its current video, from the database."""

    def __init__(self, stdout, source_id):
        self.stdout = stdout
        self.source_id = source_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.last_line = ""

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join()
        self.draw()
        self.stdout.write("")

    def wait_until_finished(self):
        while not self.all_finished():
            time.sleep(POLL_INTERVAL_S)

    def all_finished(self):
        return all(job.is_finished for job in selectors.jobs_of_source(self.source_id))

    def run(self):
        try:
            while not self.stop.wait(POLL_INTERVAL_S):
                self.draw()
        finally:
            connection.close()

    def draw(self):
        jobs = selectors.jobs_of_source(self.source_id)
        if not jobs:
            return
        done = sum(job.is_finished for job in jobs)
        fraction = sum(100.0 if job.is_finished else job.percent for job in jobs) / (100.0 * len(jobs))
        filled = int(BAR_WIDTH * fraction)
        current = next((job for job in jobs if not job.is_finished), None)
        detail = f"  {current.video}: {current.progress_label}" if current else ""
        line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{len(jobs)} videos{detail}"
        if line != self.last_line:
            self.stdout.write(f"\r{line[:160]}", ending="")
            self.stdout.flush()
            self.last_line = line
