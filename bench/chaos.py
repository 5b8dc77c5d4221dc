"""Chaos: a feed ingested and 20 API clients served while Redis is restarted empty twice and the node's worker
is killed once (issue 16). Everything runs here, on ports and directories of its own; the machine's Redis and
PostgreSQL are never touched.

    .venv/bin/python bench/chaos.py                          # 3 minutes of chaos, 6 videos, SQLite
    .venv/bin/python bench/chaos.py --duration 60 --videos 3
    .venv/bin/python bench/chaos.py --database-url postgres://user@127.0.0.1:5433/chaos   # an empty database

The stack is `manage.py node` (worker + node services), `manage.py beat` and `manage.py web`, as `make up`
starts them, on an embedded redis-server without persistence (started again, it is empty). The API clients
ask GET /v1/models with an employee's key (it reads the database) one request after another. Timeline, as
shares of --duration: Redis killed at 20% and started again empty 5 s later, the node killed (SIGKILL, its
whole process group) at 45% and started again 2 s later, as a supervisor would, Redis again at 70%. Then the
bench waits (at most --settle seconds) for every video to finish and prints:

    videos indexed       expected all, each once (its chunks are positions 0..n-1 of its transcript, no more)
    requests by status   200, 503, ..., and "no answer" (connection refused or timed out)
    longest without service   the longest stretch during which no client got a 200
"""
import argparse
import atexit
import collections
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

CLIENTS = 20
REDIS_OUTAGE_S = 5
NODE_DOWN_S = 2
TALKS = [
    ["Our office opens at eight in the morning.", "The doors close at seven in the evening."],
    ["The printer on the third floor is broken.", "Please use the one next to the kitchen instead."],
    ["Lunch is served in the cafeteria at noon.", "On Fridays there is pizza for everyone."],
    ["Backups of the database run every night at two.", "They are kept for thirty days."],
    ["New laptops are ordered through the help desk.", "Delivery takes about a week."],
    ["The team meeting moved to Tuesday afternoon.", "Bring your notes from the last sprint."],
]
CREATE_USER_AND_KEY = (
    "from django.contrib.auth import get_user_model; from assistant.services import do_create_api_key; "
    "user = get_user_model().objects.create_superuser('chaos', password='not used by the bench 42'); "
    "print(do_create_api_key(user, 'chaos bench')[1])"
)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of chaos with the clients running")
    parser.add_argument("--videos", type=int, default=6, help=f"episodes in the feed (at most {len(TALKS)} distinct talks, repeated)")
    parser.add_argument("--settle", type=float, default=420.0, help="seconds to wait afterwards for every video")
    parser.add_argument("--database-url", help="an empty database for the stack (default: SQLite in a temporary VAR_DIR)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) at the end")
    args = parser.parse_args()

    work_dir = Path(tempfile.mkdtemp(prefix="kotatsu-chaos-"))
    if not args.keep:
        atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
    from inference.plumbing.embedded_redis import start_embedded_redis
    from tests.embedded_services import free_port

    redis = OwnRedis(start_embedded_redis, free_port(), work_dir)
    redis.start()
    atexit.register(redis.kill)
    web_port = free_port()
    os.environ.update({
        "VAR_DIR": str(work_dir / "var"),
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "PORT": str(web_port),
        "NODE_NAME": "chaos",
        "KOTATSU_ALLOW_PRIVATE_URLS": "1",
        "INGEST_WHISPER_MODEL": "whisper-tiny.en",
        "INGEST_RESEND_AFTER_S": "60",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "assistant.settings",
    })
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    print(f"# bench/chaos.py on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"{args.duration:.0f} s of chaos, {args.videos} videos, {CLIENTS} API clients; logs in {work_dir}", flush=True)

    manage(["migrate", "--noinput"])
    api_key = manage(["shell", "-c", CREATE_USER_AND_KEY]).split()[-1]
    import logging

    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request of 20 clients would bury the report
    from tests.ingest.media_site import Episode, MediaSite

    site_dir = work_dir / "site"
    site_dir.mkdir()
    site = MediaSite(site_dir).start()
    atexit.register(site.stop)
    now = dt.datetime.now(dt.timezone.utc)
    for number in range(args.videos):
        site.add_episode(Episode(f"talk-{number}", f"Talk {number}", TALKS[number % len(TALKS)], now - dt.timedelta(hours=number + 1)))

    stack = Stack(work_dir)
    atexit.register(stack.stop)
    for name in ("node", "beat", "web"):
        stack.start(name)
    models_url = f"http://127.0.0.1:{web_port}/v1/models"
    wait_for(lambda: answered(models_url, api_key) == 200, 180, "the web server")
    manage(["ingest", site.feed_url, "--user", "chaos"])

    clients = ApiClients(models_url, api_key)
    clients.start()
    started = time.monotonic()
    events = [
        (0.20, "Redis killed", redis.kill), (0.20 + REDIS_OUTAGE_S / args.duration, "Redis started again, empty", redis.start),
        (0.45, "node killed (SIGKILL)", lambda: stack.kill("node")),
        (0.45 + NODE_DOWN_S / args.duration, "node started again", lambda: stack.start("node")),
        (0.70, "Redis killed", redis.kill), (0.70 + REDIS_OUTAGE_S / args.duration, "Redis started again, empty", redis.start),
    ]
    for share, what, action in events:
        time.sleep(max(0.0, started + share * args.duration - time.monotonic()))
        action()
        print(f"{time.monotonic() - started:6.1f} s  {what}", flush=True)
    time.sleep(max(0.0, started + args.duration - time.monotonic()))
    clients.stop()

    settled = wait_for(lambda: all_videos_final(args.videos), args.settle, "every video to finish", fail=False)
    print(f"{time.monotonic() - started:6.1f} s  {'every video finished' if settled else f'not every video finished within {args.settle:.0f} s more'}")
    report(args.videos, clients, stack)


class OwnRedis:
    """A redis-server of the bench's own, without persistence: started again, it is empty."""

    def __init__(self, start_embedded_redis, port, work_dir):
        self.start_embedded_redis, self.port, self.work_dir, self.runs = start_embedded_redis, port, work_dir, []

    def start(self):
        data_dir = self.work_dir / f"redis-run-{len(self.runs)}"  # a new, empty directory: nothing is restored
        self.runs.append(self.start_embedded_redis(self.port, data_dir, self.work_dir / "redis.log"))

    def kill(self):
        if self.runs and self.runs[-1].poll() is None:
            self.runs[-1].kill()
            self.runs[-1].wait()


class Stack:
    """node, beat and web, each in a process group of its own so that a kill takes its children too."""

    COMMANDS = {"node": ["node", "--concurrency", "1"], "beat": ["beat"], "web": ["web", "--host", "127.0.0.1"]}

    def __init__(self, work_dir):
        self.work_dir, self.processes, self.restarts = work_dir, {}, collections.Counter()

    def start(self, name):
        if name in self.processes:
            self.restarts[name] += 1
        log = open(self.work_dir / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, str(PROJECT_DIR / "manage.py"), *self.COMMANDS[name]],
            stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_DIR, start_new_session=True,
        )

    def kill(self, name):
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def exited(self):
        """Processes that exited by themselves (the bench's own kill is followed by a start)."""
        return {name: process.returncode for name, process in self.processes.items() if process.poll() is not None}

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


class ApiClients:
    """CLIENTS threads asking one request after another; each outcome is (started, ended, status or None)."""

    def __init__(self, url, api_key):
        self.url, self.api_key = url, api_key
        self.outcomes, self.stopping, self.threads = [], threading.Event(), []

    def start(self):
        self.threads = [threading.Thread(target=self.ask_until_stopped, daemon=True) for _ in range(CLIENTS)]
        for thread in self.threads:
            thread.start()

    def ask_until_stopped(self):
        import httpx

        with httpx.Client(timeout=15) as http:
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    status = http.get(self.url, headers={"Authorization": f"Bearer {self.api_key}"}).status_code
                except httpx.HTTPError:
                    status = None
                self.outcomes.append((started, time.monotonic(), status))
                time.sleep(0.1)

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def longest_without_service_s(self):
        """The longest stretch, from the first request to the last, in which no request got a 200."""
        if not self.outcomes:
            return 0.0
        first, last = min(o[0] for o in self.outcomes), max(o[1] for o in self.outcomes)
        served = sorted(ended for _, ended, status in self.outcomes if status == 200)
        moments = [first, *served, last]
        return max(later - earlier for earlier, later in zip(moments, moments[1:]))


def all_videos_final(expected):
    from django.db import close_old_connections

    from ingest.models import Job

    close_old_connections()
    jobs = Job.objects.all()
    return jobs.count() >= expected and not jobs.exclude(stage__in=Job.FINAL_STAGES).exists()


def report(expected_videos, clients, stack):
    from ingest.chunking import chunk_segments
    from ingest.models import Chunk, Job

    indexed, duplicated, other = 0, [], collections.Counter()
    for job in Job.objects.select_related("video"):
        if job.stage != Job.INDEXED:
            other[job.stage] += 1
            continue
        indexed += 1
        positions = list(Chunk.objects.filter(video=job.video_id).order_by("position").values_list("position", flat=True))
        if positions != list(range(len(chunk_segments(job.video.segments)))):
            duplicated.append(job.video.title)
    statuses = collections.Counter("no answer" if status is None else status for _, _, status in clients.outcomes)
    print(f"videos indexed: {indexed} of {expected_videos} expected"
          + (f"; not indexed: {dict(other)}" if other else "")
          + (f"; chunks wrong (duplicated or missing) for: {', '.join(duplicated)}" if duplicated else "; each once"))
    print("requests by status: " + ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items(), key=str)))
    print(f"longest without service: {clients.longest_without_service_s():.1f} s")
    exited = stack.exited()
    print(f"processes that exited by themselves: {exited or 'none'}; restarted by the bench: {dict(stack.restarts)}")


def manage(argv):
    completed = subprocess.run([sys.executable, str(PROJECT_DIR / "manage.py"), *argv], cwd=PROJECT_DIR,
                               capture_output=True, text=True, timeout=600)
    if completed.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(argv)} failed: {completed.stderr.strip()[-2000:]}")
    return completed.stdout


def answered(url, api_key):
    import httpx

    try:
        return httpx.get(url, headers={"Authorization": f"Bearer {api_key}"}, timeout=5).status_code
    except httpx.HTTPError:
        return None


def wait_for(condition, timeout_s, what, fail=True):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(1.0)
    if fail:
        raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}")
    return False


if __name__ == "__main__":
    main()
