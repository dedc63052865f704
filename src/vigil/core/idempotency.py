"""`Idempotency-Key` on POST: a retried request returns the first response instead of doing the work twice.

Keys are scoped to the caller (a resolver maps request headers to a principal id), stored with a fingerprint of
the request; the same key with a different request is refused. Responses of 5xx are not kept, so a retry after a
server error does the work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.database import Base, Database, utcnow
from vigil.core.errors import PayloadTooLarge
from vigil.core.problems import problem_response

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)
_REPLAYED_HEADERS = (b"content-type", b"location")

ScopeResolver = Callable[[dict[bytes, bytes]], str | None]


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    principal: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    headers: Mapped[dict[str, Any] | None]
    body: Mapped[bytes | None]
    created_at: Mapped[datetime]


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, database: Database, resolve_principal: ScopeResolver) -> None:
        self.app = app
        self.database = database
        self.resolve_principal = resolve_principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or []) if scope["type"] == "http" else {}
        raw_key = headers.get(HEADER)
        if scope["type"] != "http" or scope["method"] != "POST" or raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            await _problem(
                scope,
                receive,
                send,
                422,
                "invalid-input",
                "Invalid input",
                f"Idempotency-Key must be 1..{MAX_KEY_LENGTH} printable characters.",
            )
            return
        principal = self.resolve_principal(headers)
        if principal is None:  # unauthenticated: the request fails on its own, nothing to remember
            await self.app(scope, receive, send)
            return

        try:
            body = await _read_body(receive)
        except PayloadTooLarge as exc:
            await _problem(scope, receive, send, exc.status, exc.slug, exc.title, exc.detail)
            return
        fingerprint = hashlib.sha256(
            b"\n".join([scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        verdict = await anyio.to_thread.run_sync(self._claim, principal, key, fingerprint)
        if isinstance(verdict, IdempotencyRecord):
            await _replay(verdict, send)
            return
        if verdict == "mismatch":
            await _problem(
                scope,
                receive,
                send,
                422,
                "invalid-input",
                "Invalid input",
                "This Idempotency-Key was already used with a different request.",
            )
            return
        if verdict == "in-progress":
            await _problem(
                scope,
                receive,
                send,
                409,
                "conflict",
                "Conflict with the current state",
                "A request with this Idempotency-Key is still in progress; retry later.",
            )
            return

        await self._run_and_record(scope, receive, send, body=body, principal=principal, key=key)

    async def _run_and_record(
        self, scope: Scope, receive: Receive, send: Send, *, body: bytes, principal: str, key: str
    ) -> None:
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": bytearray()}
        held: list[Message] = []
        finished = False
        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture_send(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"].extend(message.get("body", b""))
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                # Recorded before the client sees the response, so a retry sent the moment it arrives replays it.
                await anyio.to_thread.run_sync(self._finish, principal, key, captured)
                finished = True
                for held_message in held:
                    await send(held_message)

        try:
            await self.app(scope, replay_receive, capture_send)
        except BaseException:
            captured["status"] = 500
            raise
        finally:
            if not finished:
                await anyio.to_thread.run_sync(self._finish, principal, key, captured)

    def _claim(self, principal: str, key: str, fingerprint: str) -> IdempotencyRecord | str:
        with self.database.session() as session:
            session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - RETENTION))
            existing = session.get(IdempotencyRecord, (principal, key))
            if existing is None:
                session.add(
                    IdempotencyRecord(
                        principal=principal,
                        key=key,
                        fingerprint=fingerprint,
                        status_code=None,
                        headers=None,
                        body=None,
                        created_at=utcnow(),
                    )
                )
                try:
                    session.flush()
                except IntegrityError:
                    return "in-progress"
                return "claimed"
        if existing.fingerprint != fingerprint:
            return "mismatch"
        if existing.status_code is None:
            return "in-progress"
        return existing

    def _finish(self, principal: str, key: str, captured: dict[str, Any]) -> None:
        with self.database.session() as session:
            record = session.get(IdempotencyRecord, (principal, key))
            if record is None:
                return
            if captured["status"] >= 500:
                session.delete(record)
                return
            record.status_code = captured["status"]
            record.headers = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in captured["headers"]
                if k.lower() in _REPLAYED_HEADERS
            }
            record.body = bytes(captured["body"])


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _replay(record: IdempotencyRecord, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (record.headers or {}).items()]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": record.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": record.body or b""})


async def _problem(scope: Scope, receive: Receive, send: Send, status: int, slug: str, title: str, detail: str) -> None:
    response = problem_response(status=status, slug=slug, title=title, detail=detail, instance=scope["path"])
    await response(scope, receive, send)
