import os
import shutil
import sys
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from assistant.services import do_ensure_admin_account
from inference.plumbing.embedded_redis import ensure_redis, start_embedded_redis, url_port
from inference.plumbing.supervisor import Child, Supervisor

HEALTH_WAIT_S = 300


class Command(BaseCommand):
    help = "Start everything this node runs (Redis when embedded, web, worker, beat) until Ctrl-C / SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("--no-beat", action="store_true", help="do not run the scheduler (another node does)")

    def handle(self, *args, no_beat=False, **options):
        settings.LOG_DIR.mkdir(parents=True, exist_ok=True)
        supervisor = Supervisor()
        supervisor.install_signal_handlers()
        try:
            self.start_redis(supervisor)
            call_command("migrate", interactive=False, verbosity=0)
            call_command("collectstatic", interactive=False, verbosity=0)
            self.pull_default_models()
            self.compile_kernels()
            self.report_admin_account(do_ensure_admin_account(settings.SUPERUSER_PASSWORD))
            self.warn_when_ffmpeg_missing()
            manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
            # Each rides out a Redis outage by itself; one that truly died is started again, the others go on.
            supervisor.start("web", manage + ["web"], settings.LOG_DIR / "web.log", env=web_environment(), restart=True)
            supervisor.start("node", manage + ["node"], settings.LOG_DIR / "node.log", restart=True)
            if not no_beat:
                supervisor.start("beat", manage + ["beat"], settings.LOG_DIR / "beat.log", restart=True)
            url = f"http://127.0.0.1:{settings.PORT}/"
            status = self.wait_for_health(supervisor, url + "health")
            if status is not None:
                self.stdout.write(f"Kotatsu is up ({status}): {url}   logs: {settings.LOG_DIR}   stop: Ctrl-C")
                self.stdout.flush()
                dead = supervisor.wait()
                if dead:
                    raise CommandError(f"{dead.name} exited with code {dead.process.returncode}; see {dead.log_path}")
        finally:
            supervisor.stop_all()
            self.stdout.write("Stopped every process this command started.")

    def start_redis(self, supervisor):
        log_path = settings.LOG_DIR / "redis.log"
        data_dir = settings.VAR_DIR / "redis"
        process = ensure_redis(settings.REDIS_URL, settings.REDIS_IS_EMBEDDED, data_dir, log_path)
        if process is None:
            return

        def restart():
            return start_embedded_redis(url_port(settings.REDIS_URL), data_dir, log_path)

        supervisor.adopt(Child("redis", process, log_path, restart=restart, started_at=time.monotonic()))

    def compile_kernels(self):
        """Compile the engine's kernels into the on-disk cache now, so no first answer waits for the compiler."""
        from inference.core.decode_attention import warm_up

        self.stdout.write(f"engine kernels ready ({warm_up():.1f} s; compiled once, then read from the cache)")

    def pull_default_models(self):
        """The models every node needs, from a peer when one has them, else from their sources."""
        try:
            call_command("models", "pull", "--defaults")
        except CommandError as error:
            self.stderr.write(f"default models not cached ({error}); retry: manage.py models pull --defaults")

    def report_admin_account(self, created):
        if created:
            username, password = created
            self.stdout.write(f"Created the admin account {username!r} with password {password} (shown once).")

    def warn_when_ffmpeg_missing(self):
        if shutil.which("ffmpeg") is None:
            self.stderr.write("ffmpeg is missing; ingestion needs it: sudo apt-get install -y ffmpeg")

    def wait_for_health(self, supervisor, health_url):
        """Poll /health until it answers 200; return a word for the state, or None when stopped first."""
        deadline = time.monotonic() + HEALTH_WAIT_S
        while not supervisor.stop_requested:
            dead = supervisor.first_exited()
            if dead:
                raise CommandError(f"{dead.name} exited with code {dead.process.returncode}; see {dead.log_path}")
            try:
                with urllib.request.urlopen(health_url, timeout=5):
                    return "healthy"
            except urllib.error.HTTPError:
                if time.monotonic() > deadline:
                    return "started, but /health reports a problem"
            except OSError:
                pass
            time.sleep(1)
        return None


def web_environment():
    """The web process's LLM threads (kernels and BLAS alike): half the cores unless KOTATSU_THREADS is set. The
    worker on the same node transcribes and embeds on its own threads; threads that find their cores taken spin in
    hand-offs, and with a worker busy on a 2-core node 2 threads made time to first token 1.6x and throughput 0.6x
    those of 1 thread (bench/RESULTS.md, "Assistant")."""
    return {"KOTATSU_THREADS": str(max(1, (os.cpu_count() or 1) // 2)), **os.environ}
