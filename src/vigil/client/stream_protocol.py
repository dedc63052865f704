"""What the stream WebSocket connections share (`stream_sync.StreamConnection`, `stream_async.AsyncStreamConnection`):
the URL, the JSON frames, the batches awaiting an answer, what an answer or a close code means, and how long to wait
before reconnecting. The connections themselves only do the input and output.

Close codes (also docs/streams.md): 4401 unauthenticated (after one token refresh: `StreamClosed`), 4403 forbidden,
4404 unknown stream — final; 4408 too slow, 4429 rate limited, 1001/1006/1011/1012/1013 — reconnect.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from websockets.exceptions import ConnectionClosed, InvalidHandshake

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


class Protocol:
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
            raise Refused(frame["problem"])
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


class Refused(Exception):
    def __init__(self, problem: JSON) -> None:
        super().__init__(problem.get("detail"))
        self.problem = problem


def close_code(exc: BaseException) -> int:
    if isinstance(exc, ConnectionClosed) and exc.rcvd is not None:
        return int(exc.rcvd.code)
    return 1006


LOST = (ConnectionClosed, OSError, InvalidHandshake, TimeoutError)
