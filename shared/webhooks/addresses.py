"""Which receivers a webhook may reach: public addresses only, unless the operator allows more.

A webhook URL is the client's to choose, and the server POSTs to it: without a check, any API key could make the
server reach its own network — loopback services, the cloud's metadata endpoint (169.254.169.254), databases on
private addresses. So a URL is refused when its host is, or resolves to, a non-public address (loopback,
private, link-local, shared, reserved, multicast), IPv4 hidden in IPv6 included. The check runs when an endpoint
is saved (a clear 400) and again on every connection the delivery worker opens (`GuardedBackend` in
worker/webhook_delivery.py): a name that resolved to a public address at creation and to a private one now — DNS
rebinding — is refused then, and the connection goes to exactly the address that was checked.
"""

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.config import Settings, get_settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_v4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64): what it would really reach."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: Address) -> bool:
    inner = embedded_v4(ip)
    if inner is not None:
        return is_public(inner)
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class Policy:
    allow_private: bool = False
    allowed_networks: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "Policy":
        s = settings or get_settings()
        return cls(s.webhook_allow_private_urls, parse_networks(s.webhook_allowed_networks))

    def allows(self, ip: Address) -> bool:
        if self.allow_private or is_public(ip):
            return True
        inner = embedded_v4(ip)
        return any(ip in net or (inner is not None and inner in net) for net in self.allowed_networks)

    def refused(self, addresses: Iterable[str]) -> str | None:
        """The first address this policy refuses, if any."""
        for a in addresses:
            if not self.allows(ipaddress.ip_address(a)):
                return a
        return None


def parse_networks(value: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order (no duplicates)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def check_url(url: str, policy: Policy, resolver: Resolver = resolve) -> str | None:
    """Why `url` may not receive webhooks, or None if it may. Resolves the host (blocking: call from a thread)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "only http:// and https:// URLs can receive webhooks"
    host = parts.hostname
    if not host:
        return "the URL has no host"
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolver(host, port)
        except (OSError, UnicodeError):
            return f"the host '{host}' could not be resolved"
    refused = policy.refused(addresses)
    if refused is not None:
        return (f"'{host}' is (or resolves to) {refused}, a loopback, private or link-local address; "
                "webhooks may only reach public addresses here")
    return None
