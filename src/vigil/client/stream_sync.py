"""The synchronous stream WebSocket of the SDK (`vigil.streams.connect(id)`): resumes by itself after a dropped
connection or a server restart (`stream_protocol` says how)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from types import TracebackType
from typing import Any, Self

from websockets.sync.client import ClientConnection as SyncWebSocket
from websockets.sync.client import connect as connect_sync

from vigil.client.stream_protocol import LOST, Events, Protocol, Refused, close_code
from vigil.client.types import JSON


class StreamConnection(Protocol):
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
            except LOST as exc:
                self._lost(exc)
                if not again:
                    self._open()
                    return None

    def _lost(self, exc: BaseException) -> None:
        code, problem = close_code(exc), self._closing_problem
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
            except Refused as refused:
                self._give_up_after(deadline, attempt, refused)
                time.sleep(self._retry_after(int(refused.problem.get("status", 500)) + 4000, refused.problem))
            except LOST as exc:
                self._give_up_after(deadline, attempt, exc)
                time.sleep(self._backoff(attempt))
            else:
                self._opened(ws)
                return
            attempt += 1
