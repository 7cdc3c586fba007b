"""The client's address behind trusted reverse proxies, and the per-client key of rate limits."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from config.client_ip import client_ip, rate_limit_key

PROXIES = ["10.0.0.0/8", "192.0.2.10", "fd00::/8"]


def request(remote: str, forwarded: str | None = None) -> Any:
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/track/", **meta)


@pytest.fixture
def behind_proxies(settings: Any) -> None:
    settings.TRUSTED_PROXIES = PROXIES


def test_without_trusted_proxies_the_header_is_ignored(settings: Any) -> None:
    settings.TRUSTED_PROXIES = []
    assert client_ip(request("203.0.113.5", "198.51.100.1")) == "203.0.113.5"


@pytest.mark.usefixtures("behind_proxies")
@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        # One trusted proxy in front: the address it appended.
        ("10.1.2.3", "198.51.100.7", "198.51.100.7"),
        # A client's own X-Forwarded-For is left of what our proxy appended: not believed.
        ("10.1.2.3", "1.2.3.4, 198.51.100.7", "198.51.100.7"),
        # Two trusted hops (a load balancer, then nginx): the rightmost untrusted address.
        ("192.0.2.10", "1.2.3.4, 198.51.100.7, 10.9.9.9", "198.51.100.7"),
        # A request straight from an untrusted address: its header is whatever it chose.
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),
        # A trusted proxy without the header: the proxy is all we know.
        ("10.1.2.3", None, "10.1.2.3"),
        # Every hop trusted (a health check from inside): the leftmost one.
        ("10.1.2.3", "10.7.7.7", "10.7.7.7"),
        # A malformed entry stops the walk at the last address read.
        ("10.1.2.3", "198.51.100.7, not-an-ip", "10.1.2.3"),
        ("10.1.2.3", "junk, 198.51.100.7", "198.51.100.7"),
        # Spaces, IPv6 with brackets and port, IPv4-mapped IPv6.
        ("10.1.2.3", "  198.51.100.7 ", "198.51.100.7"),
        ("fd00::1", "[2001:db8::5]:443", "2001:db8::5"),
        ("::ffff:10.1.2.3", "::ffff:198.51.100.7", "198.51.100.7"),
    ],
)
def test_the_rightmost_untrusted_address_is_the_client(
    remote: str, forwarded: str | None, expected: str
) -> None:
    assert client_ip(request(remote, forwarded)) == expected


def test_no_address_at_all_is_unknown(settings: Any) -> None:
    settings.TRUSTED_PROXIES = []
    assert client_ip(request("")) == "unknown"
    assert rate_limit_key(request("")) == "unknown"


@pytest.mark.usefixtures("behind_proxies")
def test_ipv6_clients_are_counted_per_64_and_ipv4_per_address() -> None:
    same_64 = {
        rate_limit_key(request("fd00::1", "2001:db8:1:2::1")),
        rate_limit_key(request("fd00::1", "2001:db8:1:2:ffff:ffff:ffff:ffff")),
    }
    assert same_64 == {"2001:db8:1:2::/64"}
    assert rate_limit_key(request("fd00::1", "2001:db8:1:3::1")) == "2001:db8:1:3::/64"
    assert rate_limit_key(request("10.0.0.1", "198.51.100.7")) == "198.51.100.7"
