"""An asyncio TCP fault proxy: each *link* listens on a loopback port of its own and forwards to one upstream
(PostgreSQL, Redis, the broker…), applying the toxics set on it (`vigil_validation.faults.toxics`).

The proxy runs its event loop in a daemon thread, so tests drive it with plain calls::

    with FaultProxy() as proxy:
        link = proxy.add_link("database", "127.0.0.1", 5432)
        url = through_link("postgresql://u@127.0.0.1:5432/db", link)   # …@127.0.0.1:<link port>/db
        with link.fault(Blackhole()):
            ...  # the server under test loses its database, silently
        # healed: held data flows again

A blackhole *holds* data rather than dropping it: that is what a partition looks like to TCP (segments are
retransmitted until the path heals or a timeout fires), so protocol streams are never corrupted by the proxy
itself — a client that gives up first sees a timeout, as it would in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from vigil_validation.faults.toxics import Bandwidth, Blackhole, Down, Latency, ResetPeer, SlowClose, Toxic

T = TypeVar("T")
CHUNK = 65536
CONNECT_TIMEOUT_S = 5.0
CONTROL_TIMEOUT_S = 10.0


@dataclass
class LinkStats:
    accepted: int = 0
    refused_or_reset: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass(eq=False)  # identity, so live connections can be kept in a set
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self, *, reset: bool) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                _abort(writer, reset=reset)


def _abort(writer: asyncio.StreamWriter, *, reset: bool) -> None:
    if reset:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0: close sends RST, not FIN — the peer sees "connection reset by peer".
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Link:
    """One proxied connection path. Its listening port stays the same for its whole life (also across `Down`),
    so URLs rewritten to it stay valid. `events` is its fault timeline: (monotonic time, description)."""

    def __init__(self, proxy: FaultProxy, name: str, upstream_host: str, upstream_port: int, port: int) -> None:
        self.name = name
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        self.stats = LinkStats()
        self.events: list[tuple[float, str]] = []
        self._proxy = proxy
        self._toxics: tuple[Toxic, ...] = ()
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._flowing: asyncio.Event | None = None  # created in the loop; cleared while blackholed
        self._rng = random.Random(f"{name}:{port}")

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def toxics(self) -> tuple[Toxic, ...]:
        return self._toxics

    @property
    def live_connections(self) -> int:
        return len(self._connections)

    # -- control (any thread) --------------------------------------------------------------------------------
    def set(self, *toxics: Toxic) -> None:
        """Replaces the link's toxics (none: a clean link)."""
        self._proxy.call(self._apply(tuple(toxics)))

    def clear(self) -> None:
        self.set()

    @contextlib.contextmanager
    def fault(self, *toxics: Toxic) -> Iterator[Link]:
        """The toxics for the duration of the block; the link is clean again afterwards, whatever happened."""
        self.set(*toxics)
        try:
            yield self
        finally:
            self.clear()

    # -- inside the loop ------------------------------------------------------------------------------------
    def _has(self, kind: type[Any]) -> bool:
        return any(isinstance(t, kind) for t in self._toxics)

    def _first(self, kind: type[T]) -> T | None:
        return next((t for t in self._toxics if isinstance(t, kind)), None)

    async def _apply(self, toxics: tuple[Toxic, ...]) -> None:
        self._toxics = toxics
        self.events.append((time.monotonic(), ", ".join(type(t).__name__ for t in toxics) or "clear"))
        assert self._flowing is not None
        if self._has(Blackhole):
            self._flowing.clear()
        else:
            self._flowing.set()
        if self._has(Down) or self._has(ResetPeer):
            for connection in list(self._connections):
                connection.abort(reset=self._has(ResetPeer))
        if self._has(Down):
            await self._stop_listening()
        else:
            await self._listen()

    async def _listen(self) -> None:
        if self._flowing is None:
            self._flowing = asyncio.Event()
            self._flowing.set()
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _close(self) -> None:
        await self._stop_listening()
        for connection in list(self._connections):
            connection.abort(reset=False)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        if self._has(ResetPeer) or self._has(Down):
            self.stats.refused_or_reset += 1
            _abort(writer, reset=True)
            return
        connection = _Connection(client=writer)
        self._connections.add(connection)
        try:
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(*self.upstream), timeout=CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError):
                # The real server is not there: the client sees what it would see without the proxy, a reset.
                self.stats.refused_or_reset += 1
                _abort(writer, reset=True)
                return
            connection.upstream = up_writer
            await asyncio.gather(
                self._pump(reader, up_writer, upstream=True),
                self._pump(up_reader, writer, upstream=False),
                return_exceptions=True,
            )
        finally:
            self._connections.discard(connection)
            connection.abort(reset=False)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, upstream: bool) -> None:
        assert self._flowing is not None
        try:
            while True:
                bandwidth = self._first(Bandwidth)
                size = CHUNK if bandwidth is None else max(1, min(CHUNK, bandwidth.bytes_per_s // 10))
                data = await source.read(size)
                if not data:
                    break
                await self._flowing.wait()  # held, not dropped, while blackholed
                latency = self._first(Latency)
                if latency is not None:
                    await asyncio.sleep(latency.delay_s(self._rng))
                if bandwidth is not None:  # a chunk leaves only once the link could have carried it
                    await asyncio.sleep(len(data) / bandwidth.bytes_per_s)
                sink.write(data)
                await sink.drain()
                if upstream:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
            slow = self._first(SlowClose)
            if slow is not None:
                await asyncio.sleep(slow.delay_s)
            if sink.can_write_eof():
                sink.write_eof()
        except (OSError, RuntimeError):
            # One side died (reset, aborted): the other goes too, as a real peer's would.
            sink.transport.abort()


class FaultProxy:
    """The proxy: an event loop in a daemon thread, and its links. A context manager; `close()` ends it all."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._links: dict[str, Link] = {}
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine on the proxy's loop and returns its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=CONTROL_TIMEOUT_S)

    def add_link(self, name: str, upstream_host: str, upstream_port: int, *, port: int = 0) -> Link:
        """A new link listening on `port` (0: a free one) and forwarding to the upstream."""
        if name in self._links:
            raise ValueError(f"the proxy already has a link named {name!r}")
        if port == 0:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
        link = Link(self, name, upstream_host, upstream_port, port)
        self.call(link._listen())
        self._links[name] = link
        return link

    def link(self, name: str) -> Link:
        return self._links[name]

    @property
    def links(self) -> dict[str, Link]:
        return dict(self._links)

    def heal_all(self) -> None:
        for link in self._links.values():
            link.clear()

    def close(self) -> None:
        if not self._loop.is_running():
            return
        for link in self._links.values():
            with contextlib.suppress(Exception):
                self.call(link._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=CONTROL_TIMEOUT_S)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def through_link(url: str, link: Link) -> str:
    """`url` (any scheme: postgresql+psycopg, redis, amqp, http) with its host and port replaced by the link's."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@{link.host}:{link.port}" if userinfo else f"{link.host}:{link.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def upstream_of(url: str, default_port: int) -> tuple[str, int]:
    """The host and port a URL points at (for `add_link`)."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port
