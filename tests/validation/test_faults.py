"""The fault proxy against a real TCP echo server: every toxic does to a live socket what it says.

Time appears only as lower bounds (a delay can be longer on a busy machine, never shorter) and as waits that bound
how long a test may hang; nothing asserts that something was fast."""

from __future__ import annotations

import contextlib
import random
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from vigil_validation.faults import (
    Bandwidth,
    Blackhole,
    Down,
    FaultProxy,
    Latency,
    ResetPeer,
    SlowClose,
    through_link,
    upstream_of,
)
from vigil_validation.faults.proxy import Link

WAIT_S = 10.0


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            if data == b"bye":  # the server closes first (for slow close)
                return
            self.request.sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    server = _Server(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[0], server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def link(echo: tuple[str, int]) -> Iterator[Link]:
    with FaultProxy() as proxy:
        yield proxy.add_link("echo", *echo)


def _connect(link: Link) -> socket.socket:
    sock = socket.create_connection((link.host, link.port), timeout=WAIT_S)
    sock.settimeout(WAIT_S)
    return sock


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _round_trip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(len(data))


def test_a_clean_link_forwards_both_ways(link: Link) -> None:
    with _connect(link) as sock:
        payload = bytes(range(256)) * 1000
        sock.sendall(payload)
        assert _recv_exactly(sock, len(payload)) == payload
    assert link.stats.accepted == 1
    assert link.stats.bytes_up >= len(payload)


def test_latency_delays_every_round_trip_by_at_least_its_amount(link: Link) -> None:
    with _connect(link) as sock:
        link.set(Latency(ms=150))
        start = time.monotonic()
        sock.sendall(b"ping")
        assert _recv_exactly(sock, 4) == b"ping"
        # Once up, once down.
        assert time.monotonic() - start >= 0.3


def test_jitter_stays_within_its_bounds() -> None:
    rng = random.Random(1)
    delays = [Latency(ms=100, jitter_ms=50).delay_s(rng) for _ in range(1000)]
    assert min(delays) >= 0.05
    assert max(delays) <= 0.15
    assert max(delays) - min(delays) > 0.05  # it does vary


def test_a_blackhole_holds_data_until_it_heals(link: Link) -> None:
    with _connect(link) as sock:
        link.set(Blackhole())
        sock.sendall(b"held")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(4)
        # New connections are accepted too, and hear nothing either.
        with _connect(link) as other:
            other.settimeout(0.3)
            other.sendall(b"x")
            with pytest.raises(TimeoutError):
                other.recv(1)
        link.clear()
        sock.settimeout(WAIT_S)
        assert _recv_exactly(sock, 4) == b"held"


def test_reset_peer_resets_live_connections_and_new_ones(link: Link) -> None:
    with _connect(link) as sock:
        sock.sendall(b"a")
        assert _recv_exactly(sock, 1) == b"a"
        link.set(ResetPeer())
        with pytest.raises(ConnectionResetError):
            _round_trip(sock, b"b")
        # A new connection is reset too: at its first round trip, or already while connecting when the proxy's
        # reset lands before the handshake completes (a loaded machine).
        with pytest.raises(ConnectionResetError), _connect(link) as other:
            _round_trip(other, b"c")
    link.clear()
    with _connect(link) as sock:
        sock.sendall(b"d")
        assert _recv_exactly(sock, 1) == b"d"


def test_down_refuses_connections_and_comes_back_on_the_same_port(link: Link) -> None:
    port = link.port
    link.set(Down())
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((link.host, port), timeout=WAIT_S).close()
    link.clear()
    assert link.port == port
    with _connect(link) as sock:
        sock.sendall(b"back")
        assert _recv_exactly(sock, 4) == b"back"


def test_down_cuts_a_live_connection(link: Link) -> None:
    with _connect(link) as sock:
        sock.sendall(b"a")
        assert _recv_exactly(sock, 1) == b"a"
        link.set(Down())
        with contextlib.suppress(ConnectionResetError):  # a cut is EOF or a reset, never data
            assert sock.recv(1) == b""


def test_bandwidth_caps_the_rate(link: Link) -> None:
    link.set(Bandwidth(bytes_per_s=20_000))
    with _connect(link) as sock:
        payload = b"x" * 10_000
        start = time.monotonic()
        sock.sendall(payload)
        assert _recv_exactly(sock, len(payload)) == payload
        # 10 kB up and 10 kB down at 20 kB/s each way, pipelined: at least ~0.5 s.
        assert time.monotonic() - start >= 0.45
    with pytest.raises(ValueError, match="positive"):
        Bandwidth(bytes_per_s=0)


def test_slow_close_delays_the_close(link: Link) -> None:
    link.set(SlowClose(delay_s=0.5))
    with _connect(link) as sock:
        start = time.monotonic()
        sock.sendall(b"bye")  # the echo server closes its side
        assert sock.recv(1) == b""
        assert time.monotonic() - start >= 0.5


def test_a_missing_upstream_looks_like_a_reset(link: Link) -> None:
    with FaultProxy() as proxy:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            unused = probe.getsockname()[1]
        dead = proxy.add_link("dead", "127.0.0.1", unused)
        # The reset may arrive before the connect call returns.
        with contextlib.suppress(ConnectionResetError), _connect(dead) as sock:
            assert sock.recv(1) == b""
        assert dead.stats.refused_or_reset == 1


def test_the_fault_block_heals_even_when_the_body_fails(link: Link) -> None:
    with pytest.raises(RuntimeError), link.fault(Down()):
        raise RuntimeError("the test failed mid-fault")
    assert link.toxics == ()
    with _connect(link) as sock:
        sock.sendall(b"ok")
        assert _recv_exactly(sock, 2) == b"ok"
    assert [label for _, label in link.events] == ["Down", "clear"]


def test_urls_are_rewritten_to_the_link(link: Link) -> None:
    assert through_link("postgresql+psycopg://u:p@db.example:5432/x?sslmode=disable", link) == (
        f"postgresql+psycopg://u:p@127.0.0.1:{link.port}/x?sslmode=disable"
    )
    assert through_link("redis://127.0.0.1:6379/0", link) == f"redis://127.0.0.1:{link.port}/0"
    assert upstream_of("amqp://guest:guest@127.0.0.1//", 5672) == ("127.0.0.1", 5672)
    with FaultProxy() as proxy:
        proxy.add_link("a", "127.0.0.1", 1)
        with pytest.raises(ValueError, match="already"):
            proxy.add_link("a", "127.0.0.1", 1)
