"""Redis killed and started again empty while a feed is being ingested by a running stack (node, beat, web, on a
Redis of the test's own): every process stays up, /health is ok again within 30 s, and every video ends indexed
exactly once, without a manual step (beat's sweep sends again the messages Redis lost)."""
import datetime as dt
import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from django.apps import apps
from importlib import import_module

from inference.plumbing.embedded_redis import start_embedded_redis
from ingest.chunking import chunk_segments
from ingest.models import Chunk, Job, VideoSummary
from tests.conftest import PROJECT_DIR, child_env, manage_py, stop_process
from tests.embedded_services import free_port
from tests.ingest.media_site import Episode

pytestmark = pytest.mark.django_db(transaction=True)

OUTAGE_S = 5
HEALTH_BACK_S = 30
INGESTED_WITHIN_S = 420
TALKS = [
    ["Our office opens at eight in the morning.", "The doors close at seven in the evening."],
    ["The printer on the third floor is broken.", "Please use the one next to the kitchen instead."],
    ["Lunch is served in the cafeteria at noon.", "On Fridays there is pizza for everyone."],
]


def health_status(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            return json.load(response)["status"]
    except urllib.error.HTTPError as error:
        return json.load(error)["status"]
    except OSError:
        return None


def wait_for(condition, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def resend_sweep_scheduled():
    """The sweep's PeriodicTask, as its migration creates it (a transactional test before this one emptied the tables)."""
    import_module("ingest.migrations.0005_resend_lost_work_schedule").create_resend_sweep(apps, None)


class OwnRedis:
    """A redis-server of this test's own, without persistence: started again, it is empty."""

    def __init__(self, work_dir):
        self.port, self.work_dir, self.runs = free_port(), work_dir, []

    def start(self):
        data_dir = self.work_dir / f"redis-run-{len(self.runs)}"  # a new, empty directory: nothing is restored
        self.runs.append(start_embedded_redis(self.port, data_dir, self.work_dir / "redis.log"))

    def kill(self):
        self.runs[-1].kill()
        self.runs[-1].wait()


@pytest.fixture
def own_redis(tmp_path):
    redis = OwnRedis(tmp_path)
    redis.start()
    yield redis
    for process in redis.runs:
        process.kill()
        process.wait()


def test_a_redis_restarted_empty_mid_ingestion_loses_no_video(media_site, tiny_whisper, admin_user, own_redis, tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    for number, sentences in enumerate(TALKS):
        media_site.add_episode(Episode(f"talk-{number}", f"Talk {number}", sentences, now - dt.timedelta(hours=number + 1)))
    resend_sweep_scheduled()
    web_port = free_port()
    env = child_env(REDIS_URL=f"redis://127.0.0.1:{own_redis.port}/0", PORT=web_port, NODE_NAME="survivor", INGEST_RESEND_AFTER_S=60)
    processes = {}
    for name, argv in {
        "node": manage_py("node", "--concurrency", "1"),
        "beat": manage_py("beat"),
        "web": manage_py("web", "--host", "127.0.0.1"),
    }.items():
        log = open(tmp_path / f"{name}.log", "wb")
        processes[name] = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_DIR)
    try:
        wait_for(lambda: health_status(web_port) == "ok", 120, "the stack to be healthy")
        subprocess.run(manage_py("ingest", media_site.feed_url), env=env, cwd=PROJECT_DIR, check=True, timeout=120)
        wait_for(lambda: Job.objects.filter(stage__in=[Job.DOWNLOADING, Job.TRANSCRIBING]).exists(), 120, "a transcription")

        own_redis.kill()
        time.sleep(OUTAGE_S)
        assert health_status(web_port) == "degraded"
        own_redis.start()
        back_at = time.monotonic()
        wait_for(lambda: health_status(web_port) == "ok", HEALTH_BACK_S, "/health to be ok again")
        assert time.monotonic() - back_at < HEALTH_BACK_S

        wait_for(
            lambda: Job.objects.filter(stage__in=Job.FINAL_STAGES).count() == len(TALKS), INGESTED_WITHIN_S, "every video to finish"
        )
        for job in Job.objects.select_related("video"):
            assert job.stage == Job.INDEXED, job.error
            positions = list(Chunk.objects.filter(video=job.video_id).order_by("position").values_list("position", flat=True))
            assert positions == list(range(len(chunk_segments(job.video.segments))))
        wait_for(lambda: VideoSummary.objects.filter(written_at__isnull=False).count() == len(TALKS), 120, "every summary")
        assert {name: process.poll() for name, process in processes.items()} == {name: None for name in processes}
        node_log = (tmp_path / "node.log").read_text(errors="replace")
        assert node_log.count("Redis unreachable since") == node_log.count("Redis back after") >= 1
    finally:
        for process in processes.values():
            stop_process(process)
