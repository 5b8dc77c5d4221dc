"""Refuse URLs that would make a worker fetch from inside the LAN or the cloud (SSRF).

Django-free: the checks run on every URL a user submits and on every media URL before a download.
"""
import ipaddress
import socket
from urllib.parse import urlsplit

ALLOWED_SCHEMES = {"http", "https"}
# Not covered by ipaddress' is_private/is_link_local flags, yet answered by cloud metadata services.
METADATA_ADDRESSES = {ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")}
METADATA_HOSTNAMES = {"metadata", "metadata.google.internal", "metadata.goog", "instance-data"}


class UnsafeUrl(ValueError):
    """A URL Kotatsu will not fetch; the message says why, for the person who submitted it."""


def check_public_url(url, allow_private=False, resolve=socket.getaddrinfo):
    """Return the URL when it is http(s) on a public host; raise UnsafeUrl otherwise.

    Every address the host name resolves to must be public: one private answer is enough to refuse, since
    the downloader may connect to any of them.
    """
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise UnsafeUrl(f"only http:// and https:// URLs can be ingested, not {parts.scheme or 'a bare path'}://")
    host = parts.hostname
    if not host:
        raise UnsafeUrl(f"{url!r} has no host name")
    if allow_private:
        return url
    if host.rstrip(".").lower() in METADATA_HOSTNAMES or host.lower() == "localhost" or host.endswith(".localhost"):
        raise UnsafeUrl(f"{host} is a local or cloud-metadata host; only public hosts can be ingested")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl(f"{url!r} has an invalid port") from None
    try:
        answers = resolve(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeUrl(f"cannot resolve {host}: {error}") from None
    for address in {answer[4][0] for answer in answers}:
        reason = non_public_reason(ipaddress.ip_address(address.split("%")[0]))
        if reason:
            shown = host if host == address else f"{host} ({address})"
            raise UnsafeUrl(f"{shown} is a {reason} address; only public hosts can be ingested")
    return url


def non_public_reason(address):
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "cloud-metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        # 169.254.169.254, the metadata service of most clouds, is link-local.
        return "link-local"
    if address.is_private or address.is_reserved or address.is_unspecified or address.is_multicast:
        return "private"
    if not address.is_global:
        return "non-public"
    return None
