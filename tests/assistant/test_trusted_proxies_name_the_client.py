"""The address the login limit counts: the connection's peer, or, when that peer is listed in TRUSTED_PROXIES,
the first address in X-Forwarded-For (read from the right) that is not a trusted proxy."""
import ipaddress

import pytest
from django.test import RequestFactory

from assistant.login_limit import client_address
from inference.plumbing.config import ConfigError, parse_networks

PROXIES = (ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("192.168.5.9/32"))


def address_of(peer, forwarded_for=None):
    headers = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for is not None else {}
    return client_address(RequestFactory().get("/login/", REMOTE_ADDR=peer, **headers))


def test_without_trusted_proxies_the_peer_is_the_client(settings):
    settings.TRUSTED_PROXIES = ()
    assert address_of("127.0.0.1", "203.0.113.5") == "127.0.0.1"


def test_an_untrusted_peer_is_the_client_whatever_it_forwards(settings):
    settings.TRUSTED_PROXIES = PROXIES
    assert address_of("198.51.100.7", "203.0.113.5") == "198.51.100.7"


def test_a_trusted_proxy_names_its_client(settings):
    settings.TRUSTED_PROXIES = PROXIES
    assert address_of("10.1.2.3", "203.0.113.5") == "203.0.113.5"


def test_what_the_client_wrote_before_the_proxys_entry_is_ignored(settings):
    settings.TRUSTED_PROXIES = PROXIES
    assert address_of("10.1.2.3", "6.6.6.6, 203.0.113.5") == "203.0.113.5"


def test_a_chain_of_trusted_proxies_is_followed_to_the_first_untrusted_hop(settings):
    settings.TRUSTED_PROXIES = PROXIES
    assert address_of("192.168.5.9", "6.6.6.6, 203.0.113.5, 10.1.0.1") == "203.0.113.5"


def test_a_malformed_hop_leaves_the_last_trusted_proxy_as_the_client(settings):
    settings.TRUSTED_PROXIES = PROXIES
    assert address_of("10.1.2.3", "not-an-address") == "10.1.2.3"


def test_the_setting_takes_addresses_and_networks():
    assert parse_networks("TRUSTED_PROXIES", " 10.1.0.0/16, 192.168.5.9 ,::1") == (
        ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("192.168.5.9/32"), ipaddress.ip_network("::1/128"))
    assert parse_networks("TRUSTED_PROXIES", "") == ()


def test_a_bad_value_is_one_line_naming_the_variable():
    with pytest.raises(ConfigError) as raised:
        parse_networks("TRUSTED_PROXIES", "10.0.0.0/8, proxy.lan")
    assert str(raised.value).startswith("TRUSTED_PROXIES: ") and "'proxy.lan'" in str(raised.value)
    assert "\n" not in str(raised.value)
