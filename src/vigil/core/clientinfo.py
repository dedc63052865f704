"""Where a request comes from: the client's address (believing `X-Forwarded-For` only from trusted proxies) and
its user agent, for rate limits, login throttling, sessions and the audit log (read from a request by
`vigil.web.deps.client_info`)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

MAX_USER_AGENT = 400
Networks = tuple[IPv4Network | IPv6Network, ...]


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str
    user_agent: str | None


def parse_networks(cidrs: list[str]) -> Networks:
    return tuple(ip_network(cidr, strict=False) for cidr in cidrs)


def _is_trusted(address: str, trusted: Networks) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


def is_https(scheme: str, peer: str | None, forwarded_proto: str | None, trusted: Networks) -> bool:
    """Whether the client reached us over HTTPS: our own TLS, or a trusted proxy that says so in
    `X-Forwarded-Proto` (its first value: the client-facing hop). Anyone else's header is ignored.

    >>> nets = parse_networks(["10.0.0.0/8"])
    >>> is_https("http", "10.0.0.2", "https", nets), is_https("http", "198.51.100.1", "https", nets)
    (True, False)
    """
    if scheme in ("https", "wss"):
        return True
    if not forwarded_proto or not trusted or peer is None or not _is_trusted(peer, trusted):
        return False
    return forwarded_proto.split(",")[0].strip().lower() == "https"


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Networks) -> str:
    """The peer's address, or — when the peer is a trusted proxy — the right-most address in `X-Forwarded-For`
    that is not itself a trusted proxy (the left-most ones are whatever the client claimed).

    >>> nets = parse_networks(["10.0.0.0/8"])
    >>> client_ip("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.1", nets)
    '203.0.113.9'
    >>> client_ip("198.51.100.1", "6.6.6.6", nets)
    '198.51.100.1'
    """
    address = peer or "unknown"
    if not forwarded_for or not trusted or not _is_trusted(address, trusted):
        return address
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        try:
            ip_address(hop)
        except ValueError:
            return address  # a malformed chain: trust none of it
        if not _is_trusted(hop, trusted):
            return hop
    return address
