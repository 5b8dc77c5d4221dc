"""`ingest URL --inline` run again after an interrupted run (Ctrl-C, a crash) of the same source processes the videos
it left: those still at the discovered stage and those its dead process held mid-step; a video a live worker holds
is left to that worker."""
import datetime as dt
import io
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.utils import timezone

from ingest import services
from ingest.models import Chunk, Job
from tests.ingest.media_site import Episode

pytestmark = pytest.mark.django_db(transaction=True)


def episode(guid, sentences, hours_ago):
    return Episode(guid, guid.replace("-", " ").title(), sentences, timezone.now() - dt.timedelta(hours=hours_ago))


def dead_process_owner(settings):
    """The lease holder string of a process of this node that has exited: the interrupted command."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return f"{settings.NODE_NAME}:{process.pid}:0"


def test_a_second_inline_run_processes_the_videos_an_interrupted_run_left(media_site, tiny_whisper, admin_user, settings):
    settings.LLM_ANSWER_MODEL = "no-such-llm"  # summaries without an LLM (extractive, labelled so): quick
    media_site.add_episode(episode("never-started", ["The fire alarm will be tested on Friday at noon."], 3))
    media_site.add_episode(episode("cut-mid-step", ["Your laptop is waiting for you at the front desk."], 2))
    media_site.add_episode(episode("a-worker-has-it", ["The kitchen fridge is emptied every Friday."], 1))
    # The first run listed the three videos, then was interrupted while transcribing one of them; meanwhile a
    # worker on another node took the third (a `manage.py ingest` without --inline had sent it).
    source, _ = services.do_subscribe(admin_user, media_site.feed_url)
    assert len(services.do_sync_source(source.pk)) == 3
    jobs = {job.video.video_id: job for job in Job.objects.select_related("video")}
    Job.objects.filter(pk=jobs["cut-mid-step"].pk).update(
        stage=Job.TRANSCRIBING, percent=40.0, owner=dead_process_owner(settings), heartbeat_at=timezone.now())
    Job.objects.filter(pk=jobs["a-worker-has-it"].pk).update(
        stage=Job.DOWNLOADING, owner="other-node:123:456", heartbeat_at=timezone.now())

    out = io.StringIO()
    call_command("ingest", media_site.feed_url, "--inline", stdout=out)

    assert "0 new video(s)" in out.getvalue() and "2 video(s) left unfinished before: taken up here" in out.getvalue()
    stages = {job.video.video_id: (job.stage, job.owner) for job in Job.objects.select_related("video")}
    assert stages["never-started"] == stages["cut-mid-step"] == (Job.INDEXED, "")
    assert stages["a-worker-has-it"] == (Job.DOWNLOADING, "other-node:123:456"), "left to the live worker"
    indexed = set(Chunk.objects.values_list("video__video_id", flat=True))
    assert indexed == {"never-started", "cut-mid-step"}
