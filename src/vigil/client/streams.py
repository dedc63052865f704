"""Streams in the SDK: the REST calls (`vigil.streams`), and WebSocket connections, synchronous and asyncio, that
resume by themselves after a dropped connection or a server restart.

>>> with VigilClient("http://127.0.0.1:8000") as vigil:  # doctest: +SKIP
...     vigil.login("ana@acme.example", "a long analyst passphrase")
...     stream = vigil.streams.create(name="pumps", features=["rpm", "temp"])
...     with vigil.streams.connect(stream["id"]) as conn:
...         answer = conn.send([{"seq": 1, "values": {"rpm": 1480.0, "temp": 61.2}}])

A connection keeps every batch it sent until the server answers it. When the connection drops (network, server
restart, a client too slow, the tenant's events-per-second limit), it reconnects with back-off, reads the server's
acknowledged `last_seq`, and sends the unanswered batches again: events the server had already committed are
answered as duplicates with their first scores, never learnt twice; the others are scored now. The caller sees one
answer per batch, in order, whatever happened in between.

Close codes (also docs/streams.md): 4401 unauthenticated (after one token refresh: `StreamClosed`), 4403 forbidden,
4404 unknown stream — final; 4408 too slow, 4429 rate limited, 1001/1006/1011/1012/1013 — reconnect.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx
import orjson
from websockets.asyncio.client import ClientConnection as AsyncWebSocket
from websockets.asyncio.client import connect as connect_async
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection as SyncWebSocket
from websockets.sync.client import connect as connect_sync

from vigil.client.errors import VigilAPIError, VigilConnectionError, VigilError
from vigil.client.types import JSON

if TYPE_CHECKING:
    from vigil.client.client import VigilClient

API = "/api/v1"
Events = Sequence[Mapping[str, Any]]
FINAL_CLOSE_CODES = {4401: "unauthenticated", 4403: "forbidden", 4404: "unknown stream", 1008: "policy violation"}
_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 3.0)
# Frames are JSON numbers: deflate saves little on them and costs CPU at both ends, so connections ask for none.


def dumps(body: Any) -> bytes:
    """`body` as JSON, quickly (orjson: a batch of events in a tenth of the standard library's time) — except where
    orjson would change what is sent: it writes NaN and infinities as null and refuses integers past 64 bits, which
    the server must see as they are to name the bad event. Those bodies (and any with a null) go the slow way.

    >>> dumps({"seq": 1, "values": {"a": 0.5}}), dumps({"values": {"a": float("nan")}})
    (b'{"seq":1,"values":{"a":0.5}}', b'{"values": {"a": NaN}}')
    """
    try:
        encoded = orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body).encode()
    return json.dumps(body).encode() if b"null" in encoded else encoded


class StreamClosed(VigilError):
    """The server ended the connection for a reason retrying cannot fix; `problem` is its last problem frame."""

    def __init__(self, code: int, problem: JSON | None) -> None:
        self.code = code
        self.problem = problem
        why = (problem or {}).get("detail") or FINAL_CLOSE_CODES.get(code, "closed")
        super().__init__(f"stream connection closed ({code}): {why}")


class Streams:
    """`vigil.streams`: create, list, read, rename, delete streams; send events over HTTP; read flagged events,
    drift events and metrics; and open WebSocket connections (`connect`, `connect_async`)."""

    def __init__(self, client: VigilClient) -> None:
        self._client = client

    def create(
        self,
        *,
        name: str,
        features: list[str] | None = None,
        algorithm: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        threshold: Mapping[str, Any] | None = None,
        warmup: int | None = None,
        detector_id: str | None = None,
        **extra: Any,
    ) -> JSON:
        body = {
            "name": name,
            "features": features,
            "algorithm": algorithm,
            "parameters": dict(parameters) if parameters is not None else None,
            "threshold": dict(threshold) if threshold is not None else None,
            "warmup": warmup,
            "detector_id": detector_id,
            **extra,
        }
        return self._client.call("POST", f"{API}/streams", json={k: v for k, v in body.items() if v is not None})

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> JSON:
        return self._client.call("GET", f"{API}/streams", params={"limit": limit, "cursor": cursor})

    def get(self, stream_id: str) -> JSON:
        return self._client.call("GET", f"{API}/streams/{stream_id}")

    def update(self, stream_id: str, **changes: Any) -> JSON:
        return self._client.call("PATCH", f"{API}/streams/{stream_id}", json=changes)

    def delete(self, stream_id: str) -> None:
        self._client.request("DELETE", f"{API}/streams/{stream_id}")

    def send(self, stream_id: str, events: Events) -> JSON:
        """One batch over HTTP: ``{results: [{seq, score, is_anomaly, status}], last_seq, …}``. Sent without an
        `Idempotency-Key`: a retried batch is answered by seq (its events as duplicates, with their first scores),
        never learnt twice, so the server need not store the answer."""
        response = self._client.request(
            "POST",
            f"{API}/streams/{stream_id}/events",
            content=dumps({"events": list(events)}),
            headers={"Content-Type": "application/json"},
            repeatable=True,
        )
        answer: JSON = orjson.loads(response.content)
        return answer

    def anomalies(self, stream_id: str, *, limit: int | None = None, cursor: str | None = None) -> JSON:
        return self._client.call(
            "GET", f"{API}/streams/{stream_id}/anomalies", params={"limit": limit, "cursor": cursor}
        )

    def drifts(self, stream_id: str, *, limit: int | None = None, cursor: str | None = None) -> JSON:
        return self._client.call("GET", f"{API}/streams/{stream_id}/drifts", params={"limit": limit, "cursor": cursor})

    def metrics(self, stream_id: str) -> JSON:
        return self._client.call("GET", f"{API}/streams/{stream_id}/metrics")

    def connect(self, stream_id: str, **options: Any) -> StreamConnection:
        """A synchronous WebSocket connection (a context manager); see `StreamConnection`."""
        return StreamConnection(self._client, stream_id, **options)

    def connect_async(self, stream_id: str, **options: Any) -> AsyncStreamConnection:
        """An asyncio WebSocket connection (`async with`); see `AsyncStreamConnection`."""
        return AsyncStreamConnection(self._client, stream_id, **options)


class _Protocol:
    """What both connections share: the URL, the frames, the batches awaiting an answer, and what an answer or a
    close code means. The subclasses only do the input and output."""

    def __init__(
        self,
        client: VigilClient,
        stream_id: str,
        *,
        max_in_flight: int | None = None,
        reconnect_timeout_s: float = 60.0,
        open_timeout_s: float = 10.0,
    ) -> None:
        self.client = client
        self.stream_id = stream_id
        self.url = client.base_url.replace("http", "ws", 1) + f"{API}/streams/{stream_id}/ws"
        self.max_in_flight = max_in_flight
        self.reconnect_timeout_s = reconnect_timeout_s
        self.open_timeout_s = open_timeout_s
        self.last_seq: int | None = None
        self.reconnects = 0
        self._pending: deque[tuple[str, str]] = deque()  # (batch id, frame text) sent, not yet answered
        self._counter = 0
        self._refreshed = False
        self._connected_once = False
        self._closing_problem: JSON | None = None

    def _auth_frame(self) -> str:
        if self.client.token:
            return json.dumps({"type": "auth", "token": self.client.token})
        if self.client.api_key:
            return json.dumps({"type": "auth", "api_key": self.client.api_key})
        raise VigilError("log in or give an API key before connecting to a stream")

    def _frame(self, events: Events) -> tuple[str, str]:
        self._counter += 1
        batch_id = f"b{self._counter}"
        return batch_id, dumps({"type": "events", "id": batch_id, "events": list(events)}).decode()

    def _hello(self, text: str | bytes) -> None:
        frame = orjson.loads(text)
        if frame.get("type") == "problem":
            raise _Refused(frame["problem"])
        self.last_seq = frame.get("last_seq")
        if self.max_in_flight is None:
            self.max_in_flight = int(frame.get("max_in_flight", 1))

    def _answer(self, text: str | bytes) -> JSON | None:
        """The answer to the oldest pending batch, or None for a frame that answers nothing (pong, ack)."""
        frame: JSON = orjson.loads(text)
        kind = frame.get("type")
        if kind == "problem" and frame.get("id") is None:  # about the connection, not a batch: it is closing
            self._closing_problem = frame["problem"]
            return None
        if kind not in ("scores", "problem"):  # pong, ack
            return None
        if kind == "problem" and frame["problem"].get("status") == 429:
            # The tenant's events-per-second limit: nothing of the batch was learnt, and the server closes; the
            # batch stays pending and goes again after `retry_after_s`.
            self._closing_problem = frame["problem"]
            return None
        batch_id, _ = self._pending.popleft()
        if frame.get("id") != batch_id:
            raise VigilError(f"answer for {frame.get('id')!r} while waiting for {batch_id!r}")
        if frame["type"] == "problem":
            problem = frame["problem"]
            raise VigilAPIError(int(problem.get("status", 500)), problem, headers=httpx.Headers())
        self.last_seq = frame.get("last_seq", self.last_seq)
        return frame

    def _retry_after(self, code: int, problem: JSON | None) -> float:
        """How long to wait before reconnecting after `code`; raises `StreamClosed` when reconnecting is futile."""
        if code == 4401 and not self._refreshed and self.client.refresh_token:
            self._refreshed = True
            self.client.refresh()
            return 0.0
        if code in FINAL_CLOSE_CODES:
            raise StreamClosed(code, problem)
        return float((problem or {}).get("retry_after_s", 0.0))

    def _backoff(self, attempt: int) -> float:
        return _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]

    def _give_up_after(self, deadline: float, attempt: int, exc: BaseException) -> None:
        if time.monotonic() + self._backoff(attempt) > deadline:
            raise VigilConnectionError(f"stream {self.stream_id}: cannot reconnect: {exc}") from exc

    def _opened(self, ws: Any) -> None:
        if self._connected_once:
            self.reconnects += 1
        self._connected_once = True
        self._ws = ws


class _Refused(Exception):
    def __init__(self, problem: JSON) -> None:
        super().__init__(problem.get("detail"))
        self.problem = problem


def _close_code(exc: BaseException) -> int:
    if isinstance(exc, ConnectionClosed) and exc.rcvd is not None:
        return int(exc.rcvd.code)
    return 1006


_LOST = (ConnectionClosed, OSError, InvalidHandshake, TimeoutError)


class StreamConnection(_Protocol):
    """A synchronous stream WebSocket: `send(events)` answers one batch; `send_all(batches)` keeps up to
    `max_in_flight` batches on the wire and yields their answers in order. Both survive reconnections."""

    _ws: SyncWebSocket | None = None

    def __enter__(self) -> Self:
        self._open()
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def send(self, events: Events) -> JSON:
        return next(self.send_all([events]))

    def send_all(self, batches: Iterable[Events]) -> Iterator[JSON]:
        source = iter(batches)
        exhausted = False
        while True:
            while not exhausted and len(self._pending) < (self.max_in_flight or 1):
                try:
                    batch = next(source)
                except StopIteration:
                    exhausted = True
                    break
                batch_id, text = self._frame(batch)
                self._pending.append((batch_id, text))
                self._io(lambda ws, text=text: ws.send(text), again=False)
            if not self._pending:
                return
            answer = self._io(lambda ws: self._answer(ws.recv()))
            if answer is not None:
                yield answer

    def ping(self) -> None:
        self._io(lambda ws: ws.send(json.dumps({"type": "ping"})))

    def _io(self, action: Any, *, again: bool = True) -> Any:
        """One step of input or output; a lost connection is re-established, which resends the pending batches
        (so a lost send is not repeated: `again=False`)."""
        while True:
            if self._ws is None:
                self._open()
            assert self._ws is not None
            try:
                return action(self._ws)
            except _LOST as exc:
                self._lost(exc)
                if not again:
                    self._open()
                    return None

    def _lost(self, exc: BaseException) -> None:
        code, problem = _close_code(exc), self._closing_problem
        self._ws, self._closing_problem = None, None
        time.sleep(self._retry_after(code, problem))

    def _open(self) -> None:
        deadline = time.monotonic() + self.reconnect_timeout_s
        attempt = 0
        while True:
            try:
                # Entered as the context manager it is (websockets ≥ 17.1); `close` ends it.
                ws = ExitStack().enter_context(
                    connect_sync(self.url, open_timeout=self.open_timeout_s, proxy=None, compression=None)
                )
                ws.send(self._auth_frame())
                self._hello(ws.recv(timeout=self.open_timeout_s))
                for _, text in self._pending:  # what the last connection left unanswered, in order
                    ws.send(text)
            except _Refused as refused:
                self._give_up_after(deadline, attempt, refused)
                time.sleep(self._retry_after(int(refused.problem.get("status", 500)) + 4000, refused.problem))
            except _LOST as exc:
                self._give_up_after(deadline, attempt, exc)
                time.sleep(self._backoff(attempt))
            else:
                self._opened(ws)
                return
            attempt += 1


class AsyncStreamConnection(_Protocol):
    """The asyncio twin of `StreamConnection`: `await send(events)`, `async for answer in send_all(batches)`."""

    _ws: AsyncWebSocket | None = None

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    async def send(self, events: Events) -> JSON:
        async for answer in self.send_all([events]):
            return answer
        raise VigilError("no answer")  # pragma: no cover - send_all answers every batch

    async def send_all(self, batches: Iterable[Events]) -> AsyncIterator[JSON]:
        source = iter(batches)
        exhausted = False
        while True:
            while not exhausted and len(self._pending) < (self.max_in_flight or 1):
                batch = next(source, None)
                if batch is None:
                    exhausted = True
                    break
                batch_id, text = self._frame(batch)
                self._pending.append((batch_id, text))
                await self._io(lambda ws, text=text: ws.send(text), again=False)
            if not self._pending:
                return
            answer = self._answer(await self._io(lambda ws: ws.recv()))
            if answer is not None:
                yield answer

    async def _io(self, action: Any, *, again: bool = True) -> Any:
        while True:
            if self._ws is None:
                await self._open()
            assert self._ws is not None
            try:
                return await action(self._ws)
            except _LOST as exc:
                code, problem = _close_code(exc), self._closing_problem
                self._ws, self._closing_problem = None, None
                await asyncio.sleep(self._retry_after(code, problem))
                if not again:
                    await self._open()
                    return None

    async def _open(self) -> None:
        deadline = time.monotonic() + self.reconnect_timeout_s
        attempt = 0
        while True:
            try:
                ws = await connect_async(self.url, open_timeout=self.open_timeout_s, proxy=None, compression=None)
                await ws.send(self._auth_frame())
                self._hello(await asyncio.wait_for(ws.recv(), self.open_timeout_s))
                for _, text in self._pending:
                    await ws.send(text)
            except _Refused as refused:
                self._give_up_after(deadline, attempt, refused)
                await asyncio.sleep(self._retry_after(int(refused.problem.get("status", 500)) + 4000, refused.problem))
            except _LOST as exc:
                self._give_up_after(deadline, attempt, exc)
                await asyncio.sleep(self._backoff(attempt))
            else:
                self._opened(ws)
                return
            attempt += 1
