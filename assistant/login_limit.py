"""The one limit on failed logins, shared by every login form (the site's and the admin's) and every web
process: failures are counted in Redis per (username, client address) and per client address.

Five failures lock a (username, address) pair: counting per pair rather than per username keeps an attacker
elsewhere from locking an employee out of their own desk. Twenty failures from one address, whatever the
usernames, lock that address: one machine cannot try a password against every account. Both counts are kept
for a while after the last failure, so waiting out the lock is the only way past it.

The client address is the connection's peer, unless that peer is a proxy listed in TRUSTED_PROXIES: only then
does X-Forwarded-For say who the client is. Otherwise any client could pick the address the lock counts.
"""
import hashlib
import ipaddress

from django.conf import settings

from inference.plumbing.redis import redis_client as cluster_redis_client

MAX_FAILURES = 5
MAX_FAILURES_PER_ADDRESS = 20
LOCKOUT_S = 15 * 60


def redis_client():
    # The login page must answer quickly when Redis is away.
    return cluster_redis_client(timeout_s=2)


def failure_key(username, client_address):
    # Hashed so that arbitrary usernames typed into the form never shape Redis key names.
    digest = hashlib.sha256(f"{username.strip().lower()}\0{client_address}".encode()).hexdigest()
    return f"kotatsu:login-failures:{digest}"


def address_failure_key(client_address):
    return f"kotatsu:login-failures-from:{hashlib.sha256(client_address.encode()).hexdigest()}"


def client_address(request):
    """The peer's address; behind trusted proxies, the address the first untrusted hop connected from.

    Each proxy appends the address it received the request from to X-Forwarded-For, so the list is read from
    the right and only as far as the hops are trusted proxies: what a client wrote itself is further left.
    """
    address = request.META.get("REMOTE_ADDR", "")
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    while hops and is_trusted_proxy(address):
        hop = hops.pop()
        if not is_address(hop):
            break  # a malformed hop: the last trusted proxy is the best-known client
        address = hop
    return address


def is_address(value):
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_trusted_proxy(address):
    if not settings.TRUSTED_PROXIES or not is_address(address):
        return False
    peer = ipaddress.ip_address(address)
    return any(peer in network for network in settings.TRUSTED_PROXIES)


def is_locked_out(username, address):
    pair_failures, address_failures = redis_client().mget(failure_key(username, address), address_failure_key(address))
    return int(pair_failures or 0) >= MAX_FAILURES or int(address_failures or 0) >= MAX_FAILURES_PER_ADDRESS


def record_failure(username, address):
    """Count one more failure for the pair and for the address; each lock window restarts with each failure."""
    pair_key, address_key = failure_key(username, address), address_failure_key(address)
    with redis_client().pipeline() as pipeline:
        pipeline.incr(pair_key).expire(pair_key, LOCKOUT_S).incr(address_key).expire(address_key, LOCKOUT_S).execute()


def clear_failures(username, address):
    """After a successful login: the pair starts afresh; the address keeps its count of others' failures."""
    redis_client().delete(failure_key(username, address))
