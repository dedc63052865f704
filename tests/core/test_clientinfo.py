"""The client's address: X-Forwarded-For is believed only from trusted proxies, and only its untrusted tail."""

from __future__ import annotations

from vigil.core.clientinfo import client_ip, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "127.0.0.1/32"])


def test_untrusted_peers_forwarded_for_is_ignored() -> None:
    assert client_ip("198.51.100.4", "1.2.3.4", PROXIES) == "198.51.100.4"
    assert client_ip("198.51.100.4", "1.2.3.4", ()) == "198.51.100.4"


def test_the_rightmost_untrusted_hop_is_the_client() -> None:
    assert client_ip("127.0.0.1", "6.6.6.6, 203.0.113.5", PROXIES) == "203.0.113.5"
    assert client_ip("10.1.1.1", "203.0.113.5, 10.2.2.2", PROXIES) == "203.0.113.5"
    assert client_ip("10.1.1.1", "10.2.2.2", PROXIES) == "10.1.1.1"


def test_garbage_chains_are_not_believed() -> None:
    assert client_ip("10.1.1.1", "203.0.113.5, not-an-ip", PROXIES) == "10.1.1.1"
    assert client_ip(None, None, PROXIES) == "unknown"
