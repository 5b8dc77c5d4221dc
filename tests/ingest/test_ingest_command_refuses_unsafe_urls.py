"""`manage.py ingest` refuses what would make a worker fetch from the machine, the LAN or the cloud metadata."""
import pytest
from django.core.management import CommandError, call_command

from ingest.models import Source

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url, message",
    [
        ("file:///etc/passwd", "only http:// and https:// URLs can be ingested, not file://"),
        ("http://localhost:6379/", "localhost is a local or cloud-metadata host"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://10.0.0.8/feed.xml", "10.0.0.8 is a private address"),
    ],
)
def test_unsafe_urls_are_refused_with_the_reason_and_nothing_is_stored(admin_user, url, message):
    with pytest.raises(CommandError, match=message):
        call_command("ingest", url, "--inline")
    assert not Source.objects.exists()


def test_an_unknown_subscriber_is_a_clear_error():
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("ingest", "https://93.184.215.14/feed.xml", "--user", "nobody")
