"""The stream WebSocket: authentication, JSON frames, backpressure, liveness and close codes.

A reader task takes frames off the socket into a queue of at most `stream_ws_max_in_flight` batches; when it is
full the reader stops reading, so TCP pushes back on the client instead of the server buffering without limit. A
worker applies the batches in order (the same `StreamService.ingest` as HTTP) and answers each with a `scores` or
a `problem` frame; an answer the client does not read within `stream_ws_send_timeout_s` ends the connection.
The credential is checked again every `RECHECK_S`, so a logout, a revoked key or a suspended tenant ends it too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import suppress
from typing import Any

import anyio
import orjson
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from vigil.core.context import AppContext
from vigil.core.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
    VigilError,
    problem_type_uri,
)
from vigil.core.ids import new_id
from vigil.identity.dependencies import IdentityRuntime, authenticate_presented
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.streams.events import plain_events
from vigil.streams.schemas import IN_FRAME, AuthFrame, EventsFrame, PingFrame
from vigil.streams.service import StreamService
from vigil.streams.state import StreamRuntime
from vigil.web.deps import client_info

log = logging.getLogger("vigil.streams.ws")
SUBPROTOCOL = "vigil.v1"
BEARER_PREFIX = "vigil.bearer."
RECHECK_S = 30.0

# Close codes (also in docs/streams.md and the SDK): 1000 normal, 1001 server going away, 1011 server error,
# and the application's own, 4000 + the HTTP status they stand for.
CLOSE_NORMAL = 1000
CLOSE_SERVER_ERROR = 1011
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4408
CLOSE_RATE_LIMITED = 4429


class FrameTooLarge(VigilError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"A frame holds at most {limit} bytes.", limit_bytes=limit)


class MalformedFrame(VigilError):
    status = 400
    slug = "malformed-body"
    title = "Malformed request body"


class _Closing(Exception):
    def __init__(self, code: int, error: VigilError | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.error = error


def problem_frame(error: VigilError, *, connection_id: str, batch_id: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem document inside a frame: `{"type": "problem", "id": …, "problem": {type, title, …}}`."""
    return {
        "type": "problem",
        "id": batch_id,
        "problem": {
            "type": problem_type_uri(error.slug),
            "title": error.title,
            "status": error.status,
            "detail": error.detail,
            "request_id": connection_id,
            **error.extra,
        },
    }


class StreamSocket:
    def __init__(
        self,
        *,
        websocket: WebSocket,
        stream_id: str,
        app: AppContext,
        runtime: StreamRuntime,
        identity: IdentityRuntime,
    ) -> None:
        self.ws = websocket
        self.stream_id = stream_id
        self.app = app
        self.runtime = runtime
        self.identity = identity
        self.settings = app.settings
        self.connection_id = new_id("ws")
        self.credential: str | None = None
        self.checked_at = 0.0

    async def run(self) -> None:
        offered = list(self.ws.scope.get("subprotocols") or [])
        for protocol in offered:
            if protocol.startswith(BEARER_PREFIX):
                self.credential = protocol[len(BEARER_PREFIX) :]
        # The credential is never echoed: the answer names only the protocol version.
        await self.ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        self.app.metrics.stream_sockets.inc()
        try:
            principal = await self._authenticate()
            last_seq = await self._in_thread(lambda svc: svc.last_seq(stream_id=self.stream_id), principal)
            await self._send(
                {
                    "type": "ack",
                    "stream_id": self.stream_id,
                    "last_seq": last_seq,
                    "max_batch_events": self.settings.stream_max_batch_events,
                    "max_frame_bytes": self.settings.stream_max_frame_bytes,
                    "max_in_flight": self.settings.stream_ws_max_in_flight,
                }
            )
            await self._serve(principal)
        except _Closing as closing:
            await self._close(closing.code, closing.error)
        except WebSocketDisconnect:
            return
        except Exception:
            log.exception("stream socket %s failed", self.connection_id)
            await self._close(CLOSE_SERVER_ERROR, VigilError("An unexpected error ended the connection."))
        finally:
            self.app.metrics.stream_sockets.dec()

    # -- authentication --------------------------------------------------------------------------------------
    async def _authenticate(self) -> Principal:
        # The per-address limit of every HTTP route, counted once per connection.
        address = client_info(self.ws, self.identity.trusted_proxies).ip
        decision = self.identity.limiter.hit(self.identity.limiter.per_ip, "ip", address)
        if decision is not None and not decision.allowed:
            raise _Closing(
                CLOSE_RATE_LIMITED,
                RateLimited(
                    f"Rate limit of {decision.limit} requests per {decision.window_s}s per client address reached.",
                    retry_after_s=decision.reset_s,
                ),
            )
        if self.credential is None:
            try:
                text = await asyncio.wait_for(self.ws.receive_text(), self.settings.stream_ws_auth_timeout_s)
            except TimeoutError as exc:
                raise _Closing(CLOSE_UNAUTHENTICATED, Unauthorized("No auth frame in time.")) from exc
            try:
                frame = AuthFrame.model_validate_json(text)
            except ValidationError as exc:
                raise _Closing(
                    CLOSE_UNAUTHENTICATED,
                    Unauthorized(
                        'The first frame must be {"type": "auth", "token": …} or {"type": "auth", "api_key": …}.'
                    ),
                ) from exc
            self.credential = frame.token or frame.api_key
            if not self.credential:
                raise _Closing(CLOSE_UNAUTHENTICATED, Unauthorized("The auth frame carries no credential."))
        return await self._check_credential()

    async def _check_credential(self) -> Principal:
        credential = self.credential
        assert credential is not None

        def check() -> Principal:
            with self.app.database.sessions() as session:
                return authenticate_presented(session=session, identity=self.identity, credential=credential)

        try:
            principal = await anyio.to_thread.run_sync(check)
        except Unauthorized as exc:
            raise _Closing(CLOSE_UNAUTHENTICATED, exc) from exc
        except RateLimited as exc:
            raise _Closing(CLOSE_RATE_LIMITED, exc) from exc
        if not principal.can(Permission.STREAMS_WRITE):
            raise _Closing(
                CLOSE_FORBIDDEN,
                Forbidden(f"Sending events needs the 'streams:write' permission, which {principal.describe()} lacks."),
            )
        self.checked_at = time.monotonic()
        return principal

    # -- frames ----------------------------------------------------------------------------------------------
    async def _serve(self, principal: Principal) -> None:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=self.settings.stream_ws_max_in_flight)
        reader = asyncio.create_task(self._read(queue))
        held: dict[str, Any] | object | None = _NOTHING  # a frame taken off the queue, to answer next
        try:
            while True:
                item = await queue.get() if held is _NOTHING else held
                held = _NOTHING
                if item is None:
                    return
                if time.monotonic() - self.checked_at >= RECHECK_S:
                    principal = await self._check_credential()
                assert isinstance(item, dict)
                first = _events_frame(item, self.settings.stream_max_frame_bytes)
                if first is None:
                    await self._answer(item, principal)
                    continue
                # The events frames already read behind it join its transaction: one commit (one fsync) for all,
                # each still answered on its own and in order. The first other frame waits for its turn.
                group = [first]
                while not queue.empty():
                    following = queue.get_nowait()
                    frame = _events_frame(following, self.settings.stream_max_frame_bytes) if following else None
                    if frame is None:
                        held = following
                        break
                    group.append(frame)
                await self._apply(group, principal)
        finally:
            reader.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await reader

    async def _read(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """Frames into the queue; waiting on a full queue is the backpressure."""
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    raw = message.get("bytes") or b""
                    text = raw.decode("utf-8", errors="replace")
                await queue.put({"raw": text})
        finally:
            with suppress(Exception):
                queue.put_nowait(None)

    async def _answer(self, item: dict[str, Any], principal: Principal) -> None:
        text: str = item["raw"]
        limit = self.settings.stream_max_frame_bytes
        if len(text.encode("utf-8")) > limit:
            await self._send(problem_frame(FrameTooLarge(limit), connection_id=self.connection_id))
            return
        try:
            frame = IN_FRAME.validate_json(text)
        except ValidationError as exc:
            await self._send(problem_frame(_bad_frame(exc), connection_id=self.connection_id))
            return
        if isinstance(frame, PingFrame):
            await self._send({"type": "pong", "id": frame.id})
            return
        if isinstance(frame, AuthFrame):
            error = InvalidInput("Already authenticated; send events.")
            await self._send(problem_frame(error, connection_id=self.connection_id))
            return
        if isinstance(frame, EventsFrame):
            await self._apply([frame], principal)
            return
        # sync: where the stream is
        last_seq = await self._in_thread(lambda svc: svc.last_seq(stream_id=self.stream_id), principal)
        await self._send({"type": "ack", "stream_id": self.stream_id, "last_seq": last_seq})

    async def _apply(self, frames: list[EventsFrame], principal: Principal) -> None:
        batches = [frame.events for frame in frames]
        try:
            answers = await self._in_thread(
                lambda svc: svc.ingest_many(stream_id=self.stream_id, batches=batches), principal
            )
        except VigilError as exc:  # nothing of these batches was applied: each is answered with the problem
            answers = [exc] * len(frames)
        for frame, answer in zip(frames, answers, strict=False):
            if isinstance(answer, RateLimited):  # the last answer: nothing after it was applied
                await self._send(problem_frame(answer, connection_id=self.connection_id, batch_id=frame.id))
                raise _Closing(CLOSE_RATE_LIMITED) from answer
            if isinstance(answer, VigilError):
                await self._send(problem_frame(answer, connection_id=self.connection_id, batch_id=frame.id))
            else:
                await self._send({"type": "scores", "id": frame.id, **answer.as_dict()})

    async def _in_thread(self, work: Any, principal: Principal) -> Any:
        def call() -> Any:
            with self.app.database.sessions() as session:
                svc = StreamService(
                    session=session,
                    scope=principal.scope,
                    app=self.app,
                    runtime=self.runtime,
                    limiter=self.identity.limiter,
                )
                return work(svc)

        try:
            return await anyio.to_thread.run_sync(call)
        except NotFound as exc:
            raise _Closing(CLOSE_NOT_FOUND, exc) from exc

    async def _send(self, frame: dict[str, Any]) -> None:
        data = orjson.dumps(frame).decode()
        try:
            await asyncio.wait_for(self.ws.send_text(data), self.settings.stream_ws_send_timeout_s)
        except TimeoutError as exc:
            raise _Closing(CLOSE_TOO_SLOW) from exc

    async def _close(self, code: int, error: VigilError | None) -> None:
        if self.ws.application_state != WebSocketState.CONNECTED:
            return
        with suppress(Exception):
            if error is not None and code != CLOSE_TOO_SLOW:
                frame = json.dumps(problem_frame(error, connection_id=self.connection_id))
                await asyncio.wait_for(self.ws.send_text(frame), 2.0)
            await asyncio.wait_for(self.ws.close(code=code, reason=(error.title if error else "")[:100]), 2.0)


def _bad_frame(exc: ValidationError) -> VigilError:
    problems = exc.errors()
    if problems and problems[0]["type"] in ("json_invalid", "recursion_loop"):
        return MalformedFrame("The frame is not JSON (or is nested too deeply).")
    errors = [{"loc": ["frame", *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]} for e in problems[:50]]
    return InvalidInput("The frame did not validate.", errors=errors)


_NOTHING = object()


_FRAME_MEMBERS = frozenset(("type", "events", "id"))
MAX_FRAME_ID = 100  # EventsFrame.id's bound


def _events_frame(item: dict[str, Any], limit: int) -> EventsFrame | None:
    """The item's events frame when it is a well-formed one within the size limit; anything else (answered on its
    own turn) is None. A plain events frame (the SDK's) is read by orjson as it is, without a validated object per
    event; any other goes through the frame schema."""
    text: str = item["raw"]
    if len(text) > limit or len(text.encode("utf-8")) > limit:
        return None
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        document = None
    if type(document) is dict and document.get("type") == "events":
        batch_id = document.get("id")
        events = plain_events(document, members=_FRAME_MEMBERS)
        if events is not None and (batch_id is None or (type(batch_id) is str and len(batch_id) <= MAX_FRAME_ID)):
            return EventsFrame.model_construct(type="events", events=events, id=batch_id)
    try:
        frame = IN_FRAME.validate_json(text)
    except ValidationError:
        return None
    return frame if isinstance(frame, EventsFrame) else None
