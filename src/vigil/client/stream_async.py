"""The asyncio stream WebSocket of the SDK (`vigil.streams.connect_async(id)`), the twin of `stream_sync`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any, Self

from websockets.asyncio.client import ClientConnection as AsyncWebSocket
from websockets.asyncio.client import connect as connect_async

from vigil.client.errors import VigilError
from vigil.client.stream_protocol import LOST, Events, Protocol, Refused, close_code
from vigil.client.types import JSON


class AsyncStreamConnection(Protocol):
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
            except LOST as exc:
                code, problem = close_code(exc), self._closing_problem
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
            except Refused as refused:
                self._give_up_after(deadline, attempt, refused)
                await asyncio.sleep(self._retry_after(int(refused.problem.get("status", 500)) + 4000, refused.problem))
            except LOST as exc:
                self._give_up_after(deadline, attempt, exc)
                await asyncio.sleep(self._backoff(attempt))
            else:
                self._opened(ws)
                return
            attempt += 1
