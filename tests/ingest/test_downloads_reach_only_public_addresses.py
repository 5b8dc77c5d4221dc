"""A URL that passed the public-host check cannot lead a download into this machine or the LAN afterwards:
every address yt-dlp connects to is checked, so a redirect to a private address, or a DNS answer that changed
since the check (rebinding), is refused, and the job fails for good with the reason. An HTTP proxy the
environment configures is let through (it resolves the names itself)."""
import functools
import http.server
import subprocess
import shutil
import threading
import urllib.request

import pytest
import redis
from django.conf import settings

from ingest.media import probe
from ingest.urlsafety import UnsafeUrl, check_public_url, public_connections_only
from tests.ingest.public_internet import PUBLIC_ADDRESS, requires_namespaces, run_on_the_public_internet


@pytest.fixture
def speech_dir(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    subprocess.run(["espeak-ng", "-w", str(site / "speech.wav"), "The fire extinguisher is by the door."], check=True)
    return site


@pytest.fixture
def loopback_site(speech_dir):
    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            requested.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=speech_dir))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", requested
    server.shutdown()


def test_a_connection_to_loopback_is_refused_whatever_the_url_check_said(loopback_site):
    base_url, requested = loopback_site
    assert probe(f"{base_url}/speech.wav")["title"] == "speech"  # reachable without the guard
    requested.clear()

    with pytest.raises(UnsafeUrl, match=r"led to 127\.0\.0\.1, a loopback address"):
        with public_connections_only():
            probe(f"{base_url}/speech.wav")
    assert requested == []


@pytest.fixture
def lan_proxy(monkeypatch):
    """A forward HTTP proxy on 127.0.0.1 (standing in for one on the LAN), configured through the environment."""
    relayed = []
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            relayed.append(self.path)  # an absolute URL: a proxy's request line
            request = urllib.request.Request(self.path, headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
            with direct.open(request) as upstream:
                self.send_response(upstream.status)
                for name, value in upstream.headers.items():
                    if name.lower() not in ("connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.end_headers()
                shutil.copyfileobj(upstream, self.wfile)

        def log_message(self, format, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{server.server_port}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield relayed
    server.shutdown()


def test_a_configured_proxy_on_the_lan_is_let_through(loopback_site, lan_proxy):
    base_url, requested = loopback_site
    with public_connections_only():
        assert probe(f"{base_url}/speech.wav")["title"] == "speech"
    assert lan_proxy == [f"{base_url}/speech.wav"]


def test_other_clients_still_reach_this_machine_inside_the_guard():
    with public_connections_only():
        assert redis.Redis.from_url(settings.REDIS_URL).ping()


PROBES = f"""
import json
from ingest.media import probe
from ingest.urlsafety import UnsafeUrl, public_connections_only

port = serve("SITE_DIR")
public = f"http://{PUBLIC_ADDRESS}:{{port}}"
with public_connections_only():
    public_title = probe(f"{{public}}/speech.wav")["title"]
requested_before = list(Site.requested)
refusal = None
try:
    with public_connections_only():
        probe(f"{{public}}/to-loopback/speech.wav")
except UnsafeUrl as error:
    refusal = str(error)
requested_guarded = Site.requested[len(requested_before):]
unguarded_title = probe(f"{{public}}/to-loopback/speech.wav")["title"]
print(json.dumps({{"public_title": public_title, "refusal": refusal, "requested_guarded": requested_guarded,
                  "requested_all": Site.requested, "unguarded_title": unguarded_title}}))
"""


@requires_namespaces
def test_a_redirect_from_a_public_host_to_loopback_is_refused(speech_dir):
    assert check_public_url(f"http://{PUBLIC_ADDRESS}:8080/to-loopback/speech.wav")  # the first hop is public
    seen = run_on_the_public_internet(PROBES.replace("SITE_DIR", str(speech_dir)))

    assert seen["public_title"] == "speech"
    assert "led to 127.0.0.1, a loopback address" in seen["refusal"]
    assert seen["requested_guarded"] == ["/to-loopback/speech.wav"]
    # Without the guard the same redirect reaches the loopback server: what the guard stops.
    assert seen["unguarded_title"] == "speech" and seen["requested_all"][-1] == "/speech.wav"


TRANSCRIBE_JOB = f"""
import json, os
from pathlib import Path
from inference.plumbing.embedded_redis import start_embedded_redis

work = Path("WORK_DIR")
redis_server = start_embedded_redis(6390, work / "redis", work / "redis.log")
try:
    import django
    django.setup()
    from django.core.management import call_command
    from ingest.models import Job, Source, Video
    from ingest.services import do_sync_source, do_transcribe_video

    call_command("migrate", verbosity=0)
    port = serve(str(work / "site"))
    public = f"http://{PUBLIC_ADDRESS}:{{port}}"
    source = Source.objects.create(url=f"{{public}}/to-loopback/feed.xml")
    do_sync_source(source.pk)
    source.refresh_from_db()
    video = Video.objects.create(extractor="generic", video_id="redirected", url=f"{{public}}/to-loopback/speech.wav")
    job = Job.objects.create(video=video)
    do_transcribe_video(job.pk)
    job.refresh_from_db()
    print(json.dumps({{
        "sync_error": source.last_sync_error, "stage": job.stage, "error": job.error, "attempts": job.attempts,
        "requested": Site.requested,
    }}))
finally:
    redis_server.kill()
"""


@requires_namespaces
def test_a_source_sync_and_a_job_redirected_to_loopback_fail_with_the_reason(speech_dir):
    work = speech_dir.parent
    seen = run_on_the_public_internet(
        TRANSCRIBE_JOB.replace("WORK_DIR", str(work)),
        env={
            "DJANGO_SETTINGS_MODULE": "assistant.settings", "KOTATSU_ALLOW_PRIVATE_URLS": "0",
            "VAR_DIR": str(work / "var"), "DATABASE_URL": f"sqlite:///{work / 'job.sqlite3'}",
            "REDIS_URL": "redis://127.0.0.1:6390/0",
        },
    )
    assert "led to 127.0.0.1, a loopback address" in seen["sync_error"]
    assert seen["stage"] == "failed" and seen["attempts"] == 1  # for good: not retried as a network error
    assert "led to 127.0.0.1, a loopback address" in seen["error"]
    assert seen["requested"] == ["/to-loopback/feed.xml", "/to-loopback/speech.wav"]
