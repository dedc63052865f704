"""`Idempotency-Key` on POST: a retried request returns the first response instead of doing the work twice.

Keys are scoped to the caller (a resolver maps request headers to a principal id), stored with a fingerprint of
the request (`vigil.core.idempotency`); the same key with a different request is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.database import Database
from vigil.core.errors import PayloadTooLarge
from vigil.core.idempotency import MAX_KEY_LENGTH, IdempotencyRecord, IdempotencyStore
from vigil.web.problems import problem_response

HEADER = b"idempotency-key"
_REPLAYED_HEADERS = (b"content-type", b"location")

ScopeResolver = Callable[[dict[bytes, bytes]], str | None]


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, database: Database, resolve_principal: ScopeResolver) -> None:
        self.app = app
        self.store = IdempotencyStore(database)
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
        verdict = await anyio.to_thread.run_sync(
            lambda: self.store.claim(principal=principal, key=key, fingerprint=fingerprint)
        )
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

    def _finish(self, principal: str, key: str, captured: dict[str, Any]) -> None:
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in captured["headers"] if k.lower() in _REPLAYED_HEADERS
        }
        self.store.finish(
            principal=principal, key=key, status=captured["status"], headers=headers, body=bytes(captured["body"])
        )


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
