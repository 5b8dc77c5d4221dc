"""`ingest URL --wait` hands the videos to the node workers and shows progress until they are done."""
import json

import pytest
from django.core.management import call_command

from ingest.models import Job
from tests.ingest.talks import short_talk

pytestmark = pytest.mark.django_db(transaction=True)


def test_ingest_waits_for_the_workers_with_a_progress_bar(media_site, tiny_whisper, admin_user, start_worker, capsys):
    media_site.add_episode(short_talk())
    start_worker("waiting-node")

    call_command("ingest", media_site.feed_url, "--wait", "--json")

    output = capsys.readouterr().out.strip().splitlines()
    [job] = json.loads(output[-1])["jobs"]
    assert job["stage"] == Job.INDEXED and job["percent"] == 100.0
    assert "[##############################] 1/1 videos" in "\n".join(output)
    assert Job.objects.get(pk=job["job_id"]).video.chunks.exists()
