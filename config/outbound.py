"""Which addresses the hub may call, and a connection pinned to the address that was checked.

Shops configure webhook URLs and operators configure feeds' pull URLs: both are URLs a user of
the hub chose, fetched from inside the hub's network. Without a guard they reach the hub's own
services (an admin on loopback, the database, a cloud metadata endpoint) and, for feeds, carry
the feed's secret there. One rule for both callers:

- only http and https, with a host and no credentials in the URL;
- every address the name resolves to must be public: not loopback, private, link-local,
  multicast, reserved, unspecified, carrier-grade NAT or a cloud metadata range;
- an IPv6 address that carries an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002::/16`,
  NAT64 `64:ff9b::/96`, Teredo `2001::/32`) is judged by the IPv4 address it carries, because
  a relay or a translator on the way delivers it there (`http://[2002:7f00:1::1]/` is
  127.0.0.1); the local-use NAT64 prefix `64:ff9b:1::/48` translates to the operator's own
  network and is refused whole.

The request then connects to the address that was checked, not to the name again, which closes
the DNS-rebinding window (a name that answers a public address to the check and 127.0.0.1 to
the request). Each caller has its own setting that lifts the rule for development
(WEBHOOK_ALLOW_PRIVATE_TARGETS, FEED_ALLOW_PRIVATE_TARGETS).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3.connection

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Carrier-grade NAT and the cloud metadata ranges are not covered by `is_private` everywhere.
_EXTRA_BLOCKED = (
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fd00:ec2::/32"),
    # Local-use NAT64 (RFC 8215): translated into the operator's own IPv4 network.
    ipaddress.ip_network("64:ff9b:1::/48"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeTarget(Exception):
    """The URL is not something the hub may call (scheme, or a private/loopback address)."""


class UnresolvableTarget(UnsafeTarget):
    """The host name does not resolve (now)."""


def _relayed_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a 6to4 or Teredo relay delivers this IPv6 address to."""
    carried = []
    if address.sixtofour is not None:
        carried.append(address.sixtofour)
    if address.teredo is not None:
        carried.extend(address.teredo)  # (server, client)
    return carried


def _plainly_allowed(address: Address) -> bool:
    if (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    ):
        return False
    return not any(address in net for net in _EXTRA_BLOCKED)


def address_allowed(address: Address) -> bool:
    """Whether the hub may connect to this address (see the module docstring)."""
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket, and a NAT64 address is the IPv4
        # address it translates to (an IPv6-only network with DNS64 resolves public hosts so):
        # judged by that address alone.
        if address.ipv4_mapped is not None:
            return _plainly_allowed(address.ipv4_mapped)
        if address in _NAT64:
            return _plainly_allowed(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if not all(_plainly_allowed(inner) for inner in _relayed_ipv4(address)):
            return False
    return _plainly_allowed(address)


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str

    @property
    def host_header(self) -> str:
        default_port = 443 if self.scheme == "https" else 80
        return self.host if self.port == default_port else f"{self.host}:{self.port}"


def target_resolve(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL once and check every address; the request then goes to that address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("only http and https URLs with a host are allowed")
    if parts.username or parts.password:
        raise UnsafeTarget("credentials in the URL are not allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeTarget(f"bad port in the URL: {exc}") from exc
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableTarget(f"cannot resolve {parts.hostname}: {exc}") from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise UnsafeTarget(f"{parts.hostname} has no address")
    if not allow_private:
        blocked = [a for a in addresses if not address_allowed(a)]
        if blocked:
            raise UnsafeTarget(
                f"{parts.hostname} resolves to a private, loopback, link-local or metadata "
                f"address ({blocked[0]})"
            )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, str(addresses[0]))


def connection_open(target: Target, *, timeout: float) -> urllib3.connection.HTTPConnection:
    """A connection to the checked address; TLS still verifies the URL's host name."""
    if target.scheme == "https":
        return urllib3.connection.HTTPSConnection(
            target.address,
            target.port,
            timeout=timeout,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
    return urllib3.connection.HTTPConnection(target.address, target.port, timeout=timeout)
