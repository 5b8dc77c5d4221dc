"""A worker killed with SIGKILL in the middle of a transcription loses nothing and duplicates nothing."""
import json
import time

import psutil
import pytest
from django.core.management import call_command

from ingest.chunking import chunk_segments
from ingest.models import Chunk, Job
from tests.ingest.talks import long_talk

# Generous: on a loaded 2-core machine a transcription can take ten times longer than alone.
TIMEOUT_S = 900

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(condition, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def kill_worker(process):
    worker = psutil.Process(process.pid)
    for child in worker.children(recursive=True):
        child.kill()
    worker.kill()
    process.wait(timeout=10)


def test_killing_the_worker_during_transcription_ends_with_one_set_of_chunks(
    media_site, tiny_whisper, admin_user, start_worker, capsys
):
    # Half of the long talk: long enough to be killed mid-transcription, short enough to redo quickly.
    talk = long_talk()
    talk.sentences = talk.sentences[:9]
    media_site.add_episode(talk)
    worker = start_worker("ingest-node")
    call_command("ingest", media_site.feed_url, "--json")
    job_id = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["jobs"][0]["job_id"]

    wait_for(lambda: Job.objects.filter(pk=job_id, stage=Job.TRANSCRIBING).exists(), TIMEOUT_S, "the transcription to start")
    kill_worker(worker)
    interrupted = Job.objects.get(pk=job_id)
    assert interrupted.stage == Job.TRANSCRIBING and interrupted.owner.startswith("ingest-node:")

    start_worker("ingest-node")
    job = wait_for(lambda: Job.objects.filter(pk=job_id, stage__in=Job.FINAL_STAGES).first(), TIMEOUT_S, "the job to finish")

    assert job.stage == Job.INDEXED, job.error
    chunks = list(Chunk.objects.filter(video=job.video_id).order_by("position"))
    assert [chunk.position for chunk in chunks] == list(range(len(chunk_segments(job.video.segments))))
    assert Chunk.objects.count() == len(chunks)
