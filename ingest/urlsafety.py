"""Refuse URLs that would make a worker fetch from inside the LAN or the cloud (SSRF).

Django-free: the checks run on every URL a user submits and on every media URL before a download, and
`public_connections_only` checks every address a download actually connects to.
"""
import contextlib
import functools
import ipaddress
import socket
import sys
import threading
import urllib.request
from urllib.parse import urlsplit

ALLOWED_SCHEMES = {"http", "https"}
# Not covered by ipaddress' is_private/is_link_local flags, yet answered by cloud metadata services.
METADATA_ADDRESSES = {ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")}
METADATA_HOSTNAMES = {"metadata", "metadata.google.internal", "metadata.goog", "instance-data"}


class UnsafeUrl(ValueError):
    """A URL Kotatsu will not fetch; the message says why, for the person who submitted it."""


class RefusedConnection(ConnectionRefusedError):
    """Raised inside a socket's connect: to yt-dlp it is a refused connection, so it gives up on that URL."""


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


# Whose sockets the guard checks: the HTTP stacks yt-dlp fetches through (its own, urllib3 under requests, and
# the standard library's). Other clients, such as redis-py taking a download slot, go on reaching the
# services of this machine and the LAN while a download runs.
FETCHING_MODULES = ("yt_dlp.", "urllib3.")
FETCHING_STDLIB_MODULES = {"socket", "http.client"}
# While a thread is inside public_connections_only: .refusals, a list, and .proxies, the addresses let through.
guarded_thread = threading.local()


@contextlib.contextmanager
def public_connections_only():
    """Inside the block, the connections this thread's HTTP clients open must reach public addresses.

    The check is on the address actually dialled, so neither a redirect to a private address nor a DNS
    answer that changed since check_public_url (rebinding) leads a download into the LAN or the cloud's
    metadata service. The block then ends with UnsafeUrl, whatever error yt-dlp made of the refusal.

    The HTTP proxies the environment configures are let through: yt-dlp connects to them instead of the hosts
    and they resolve the names, so behind a proxy only check_public_url's check of the submitted URL holds.
    """
    install_connection_guard()
    guarded_thread.refusals, guarded_thread.proxies = [], configured_proxy_addresses()
    try:
        yield
    except Exception as error:
        if guarded_thread.refusals:
            raise UnsafeUrl(guarded_thread.refusals[0]) from error
        raise
    finally:
        del guarded_thread.refusals, guarded_thread.proxies


def configured_proxy_addresses():
    addresses = set()
    for scheme, proxy_url in urllib.request.getproxies().items():
        if scheme == "no":  # no_proxy: a list of hosts, not a proxy
            continue
        parts = urlsplit(proxy_url if "://" in proxy_url else f"http://{proxy_url}")
        if not parts.hostname:  # getaddrinfo(None, ...) would answer with this machine's own addresses
            continue
        try:
            answers = socket.getaddrinfo(parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError, ValueError):
            continue  # yt-dlp cannot reach it either
        addresses |= {answer[4][0] for answer in answers}
    return addresses


@functools.cache
def install_connection_guard():
    """Add the audit hook once per process (audit hooks cannot be removed; outside a block it returns at once)."""
    sys.addaudithook(refuse_non_public_connections)


def refuse_non_public_connections(event, args):
    if event != "socket.connect":
        return
    refusals = getattr(guarded_thread, "refusals", None)
    sock, address = args
    if refusals is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    # The frame that called connect(): a C function has no frame of its own.
    caller = sys._getframe(1).f_globals.get("__name__", "")
    if not (caller.startswith(FETCHING_MODULES) or caller in FETCHING_STDLIB_MODULES):
        return
    host = address[0]
    if host in guarded_thread.proxies:
        return
    reason = non_public_reason(ipaddress.ip_address(host.split("%")[0]))
    if reason:
        refusals.append(
            f"the URL led to {host}, a {reason} address (through a redirect or a changed DNS answer);"
            " only public hosts can be ingested"
        )
        raise RefusedConnection(refusals[-1])
