"""The client's address, behind the reverse proxies the deployment trusts (TRUSTED_PROXIES).

gunicorn does not rewrite REMOTE_ADDR (its `forwarded_allow_ips` only decides whether to believe
X-Forwarded-Proto and friends for the URL scheme), so behind a proxy every request has the
proxy's address. X-Forwarded-For carries the real one, but a client can send that header itself:
only the hops our own proxies appended are believed. Walking from REMOTE_ADDR leftwards through
X-Forwarded-For, the first address that is not a trusted proxy is the client; everything left of
it is whatever the client chose to send.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"
# An IPv6 customer usually gets a whole /64 (often more) and picks any address in it: counting
# per address would give one client 2^64 buckets.
IPV6_CLIENT_PREFIX = 64


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def trusted_networks() -> tuple[IPNetwork, ...]:
    """settings.TRUSTED_PROXIES (CIDRs or single addresses), parsed once per distinct value."""
    return _networks(tuple(settings.TRUSTED_PROXIES))


def parse(text: str) -> IPAddress | None:
    """An address as a proxy writes it; IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(request: HttpRequest) -> IPAddress | None:
    """The rightmost address in (X-Forwarded-For, REMOTE_ADDR) that is not a trusted proxy.

    With no trusted proxies configured this is REMOTE_ADDR, whatever the headers say. If every
    hop is trusted, the leftmost one; an entry that is not an address stops the walk at the last
    address read (a client cannot smuggle a chosen key through a malformed entry).
    """
    remote = parse(str(request.META.get("REMOTE_ADDR") or ""))
    networks = trusted_networks()
    if remote is None or not _trusted(remote, networks):
        return remote
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    client = remote
    for entry in reversed(forwarded.split(",") if forwarded.strip() else []):
        hop = parse(entry)
        if hop is None:
            break
        client = hop
        if not _trusted(hop, networks):
            break
    return client


def client_ip(request: HttpRequest) -> str:
    """The client's address as text (`unknown` when the request has none)."""
    address = client_address(request)
    return str(address) if address is not None else UNKNOWN


def rate_limit_key(request: HttpRequest) -> str:
    """What a per-client limit counts: the IPv4 address, or the IPv6 client's /64."""
    address = client_address(request)
    if address is None:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False)
        return str(network)
    return str(address)
