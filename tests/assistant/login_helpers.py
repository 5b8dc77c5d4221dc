"""Logging in as a browser does, through a running web server, and forgetting the failures tests leave in Redis."""
import re

import httpx

from assistant import login_limit

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def post_login(base_url, path, username, password, source_address="127.0.0.1", forwarded_for=None):
    """GET the form for its CSRF token, then POST it from `source_address`; returns the POST's response."""
    transport = httpx.HTTPTransport(local_address=source_address)
    with httpx.Client(base_url=base_url, transport=transport, timeout=30) as browser:
        token = CSRF_FIELD.search(browser.get(path).text).group(1)
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        fields = {"username": username, "password": password, "csrfmiddlewaretoken": token}
        return browser.post(path, data=fields, headers=headers)


def forget_failures(usernames, addresses):
    keys = [login_limit.failure_key(username, address) for username in usernames for address in addresses]
    keys += [login_limit.address_failure_key(address) for address in addresses]
    login_limit.redis_client().delete(*keys)
