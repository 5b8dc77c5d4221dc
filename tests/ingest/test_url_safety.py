import socket

import pytest

from ingest.urlsafety import UnsafeUrl, check_public_url


@pytest.mark.parametrize(
    "url, reason",
    [
        ("file:///etc/passwd", "only http:// and https://"),
        ("ftp://example.com/video.mp4", "only http:// and https://"),
        ("http://localhost:8000/feed.xml", "local or cloud-metadata host"),
        ("http://127.0.0.1/feed.xml", "loopback"),
        ("http://[::1]/feed.xml", "loopback"),
        ("http://10.1.2.3/feed.xml", "private"),
        ("http://192.168.1.20:32400/library", "private"),
        ("http://172.16.0.5/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud-metadata"),
        ("http://100.100.100.200/latest/meta-data/", "cloud-metadata"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://0.0.0.0/", "private"),
        ("https:///no-host", "no host name"),
    ],
)
def test_it_refuses_urls_that_do_not_reach_a_public_host(url, reason):
    with pytest.raises(UnsafeUrl, match=reason):
        check_public_url(url)


def test_it_refuses_a_host_name_that_resolves_to_a_private_address():
    # This machine's own name is real DNS (or /etc/hosts) resolution to a loopback or LAN address.
    with pytest.raises(UnsafeUrl, match=socket.gethostname()):
        check_public_url(f"http://{socket.gethostname()}/feed.xml")


def test_it_accepts_public_addresses():
    assert check_public_url("https://93.184.215.14/watch?v=1") == "https://93.184.215.14/watch?v=1"


def test_allowing_private_urls_still_requires_http():
    assert check_public_url("http://192.168.1.20:32400/feed.xml", allow_private=True)
    with pytest.raises(UnsafeUrl):
        check_public_url("file:///etc/passwd", allow_private=True)
