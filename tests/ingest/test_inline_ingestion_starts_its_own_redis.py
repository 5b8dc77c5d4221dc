"""`ingest URL --inline` needs no `make up`: it starts the embedded Redis itself, and says so in one line when
a configured REDIS_URL is down."""
import socket

import pytest
from django.core.management import CommandError, call_command

from ingest.models import Job
from inference.plumbing.redis import is_answering
from tests.ingest.talks import short_talk

pytestmark = pytest.mark.django_db(transaction=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_inline_ingestion_starts_the_embedded_redis_when_none_answers(media_site, tiny_whisper, admin_user, settings, tmp_path):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_IS_EMBEDDED = True
    settings.VAR_DIR, settings.LOG_DIR = tmp_path / "var", tmp_path / "var" / "logs"
    media_site.add_episode(short_talk())

    call_command("ingest", media_site.feed_url, "--inline")

    assert Job.objects.get().stage == Job.INDEXED
    assert not is_answering(settings.REDIS_URL), "the Redis it started is stopped with the command"


def test_inline_ingestion_names_a_configured_redis_that_is_down(media_site, admin_user, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_IS_EMBEDDED = False
    media_site.add_episode(short_talk())

    with pytest.raises(CommandError, match=r"^REDIS_URL: cannot reach redis://127\.0\.0\.1:\d+/0 .*--inline needs Redis"):
        call_command("ingest", media_site.feed_url, "--inline")
