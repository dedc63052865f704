"""`Idempotency-Key` on POST: a retried request returns the first response instead of doing the work twice.

Two halves. The middleware reads the body once (to fingerprint the request), leaves a `PendingKey` in the request
scope, and afterwards records the response. The decision — claim, replay or refuse — is taken by `admit`, which the
route's authorization dependency calls once the caller is authenticated, rate-limited and holds the route's
permission (`identity.dependencies.require`): so a stored response is replayed only to a caller who may still make
the request (a logged-out token, a disabled user, a revoked key or a demoted role gets its 401/403, never the
replay), and keys belong to the principal the server resolved (a user or an API key), not to a header's bytes.
Routes without a declared permission (logging in) never claim: their keys are ignored.

Exactly once across a crash (a write's commit marks its claim applied): `vigil.web.idempotency_applied`.

Nothing secret is kept: a route whose answer carries a secret (a new API key) says so with `withhold_secret`, and
the record keeps a `secret-not-replayed` problem naming what was created instead of the answer. The record is
finished only when the last byte of the response has been produced (if recording it fails, the answer is still
sent: the record already says applied); a request that fails before then releases its claim, and a claim whose
process died expires with its lease (`vigil.core.idempotency`).
"""

from __future__ import annotations

import hashlib
import json
import logging

import anyio
from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.database import Database
from vigil.core.errors import (
    AnswerLost,
    Conflict,
    InvalidInput,
    PayloadTooLarge,
    SecretNotReplayed,
    problem_type_uri,
)
from vigil.core.idempotency import MAX_KEY_LENGTH, Applied, Claim, IdempotencyRecord, IdempotencyStore
from vigil.core.logging import current_request_id
from vigil.web.idempotency_applied import CURRENT, AppliedReplay, PendingKey, applied_handler, track_writes
from vigil.web.problems import PROBLEM_MEDIA_TYPE, problem_response

HEADER = b"idempotency-key"
SCOPE_KEY = "vigil.idempotency"
_REPLAYED_HEADERS = (b"content-type", b"location")
log = logging.getLogger("vigil.idempotency")


class IdempotentReplay(Exception):
    """Raised by `admit` to answer with the stored response (handled by `replay_handler`)."""

    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__("idempotent replay")
        self.record = record


async def admit(request: Request, *, principal: str) -> None:
    """The caller may make this request: claim its key, or answer with the stored response or a refusal."""
    pending: PendingKey | None = request.scope.get(SCOPE_KEY)
    if pending is None or pending.admitted:
        return
    pending.admitted = True
    verdict = await anyio.to_thread.run_sync(
        lambda: pending.store.claim(
            principal=principal, key=pending.key, fingerprint=pending.fingerprint, lease_s=pending.lease_s
        )
    )
    if isinstance(verdict, IdempotencyRecord):
        raise IdempotentReplay(verdict)
    if isinstance(verdict, Applied):
        if verdict.location is None:
            raise AnswerLost()
        raise AppliedReplay(verdict)
    if verdict == "mismatch":
        raise InvalidInput("This Idempotency-Key was already used with a different request.")
    if verdict == "in-progress":
        raise Conflict("A request with this Idempotency-Key is still in progress; retry later.")
    pending.principal, pending.owner = principal, verdict


def withhold_secret(request: Request, *, resource: str, resource_id: str) -> None:
    """This answer carries a secret shown once: a replay names what was created and says the secret is gone."""
    pending: PendingKey | None = request.scope.get(SCOPE_KEY)
    if pending is not None:
        pending.withheld = SecretNotReplayed(resource=resource, resource_id=resource_id)


async def replay_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotentReplay)
    record = exc.record
    headers = {**(record.headers or {}), "Idempotent-Replayed": "true"}
    body = record.body or b""
    if headers.get("content-type", "").startswith(PROBLEM_MEDIA_TYPE):
        # The same problem, under this request's id (the one its `X-Request-Id` and the logs carry).
        document = json.loads(body)
        document["request_id"] = current_request_id()
        body = json.dumps(document).encode()
    return Response(content=body, status_code=record.status_code or 200, headers=headers)


def install(app: FastAPI, *, database: Database, lease_s: float) -> None:
    app.add_exception_handler(IdempotentReplay, replay_handler)
    app.add_exception_handler(AppliedReplay, applied_handler)
    app.add_middleware(IdempotencyMiddleware, database=database, lease_s=lease_s)
    track_writes(database.sessions)


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, database: Database, lease_s: float) -> None:
        self.app = app
        self.store = IdempotencyStore(database)
        self.lease_s = lease_s

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
        try:
            body = await _read_body(receive)
        except PayloadTooLarge as exc:
            await _problem(scope, receive, send, exc.status, exc.slug, exc.title, exc.detail)
            return
        fingerprint = hashlib.sha256(
            b"\n".join([scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        pending = PendingKey(
            key=key, fingerprint=fingerprint, path=scope["path"], store=self.store, lease_s=self.lease_s
        )
        scope[SCOPE_KEY] = pending
        current = CURRENT.set(pending)  # seen by the request's sessions, in this task and the threads it uses
        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._keep_lease, pending)
                try:
                    await self._run_and_record(scope, receive, send, body=body, pending=pending)
                except Exception as exc:  # raised again below, outside the group, so not wrapped in an ExceptionGroup
                    failure = exc
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            CURRENT.reset(current)
        if failure is not None:
            raise failure

    async def _keep_lease(self, pending: PendingKey) -> None:
        """Renews the claim while the request runs, so only a dead process lets its lease run out."""
        while True:
            await anyio.sleep(self.lease_s / 3)
            if pending.owner is not None and pending.principal is not None and not pending.done:
                await anyio.to_thread.run_sync(self._renew, pending.principal, pending.key, pending.owner)

    def _renew(self, principal: str, key: str, owner: Claim) -> None:
        self.store.renew(principal=principal, key=key, owner=owner, lease_s=self.lease_s)

    async def _run_and_record(
        self, scope: Scope, receive: Receive, send: Send, *, body: bytes, pending: PendingKey
    ) -> None:
        status = 500
        response_headers: list[tuple[bytes, bytes]] = []
        produced = bytearray()
        held: list[Message] = []
        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture_send(message: Message) -> None:
            nonlocal status, response_headers
            if pending.owner is None:  # nothing claimed (a replay, a refusal, an unauthenticated route): pass on
                await send(message)
                return
            if message["type"] == "http.response.start":
                status, response_headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                produced.extend(message.get("body", b""))
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                # The whole answer exists: recorded before the client sees it, so a retry sent the moment it
                # arrives replays it. If recording fails (the database just went), the answer is still the true
                # one: it is sent, and a retry rebuilds it from the applied record once the claim's lease is out.
                try:
                    await self._finish(pending, status, response_headers, bytes(produced))
                except Exception:
                    log.warning("the answer to %s was not recorded for its key", pending.path, exc_info=True)
                for held_message in held:
                    await send(held_message)

        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            if pending.owner is not None and pending.principal is not None and not pending.done:
                # No complete answer (an exception, a cancelled request): the claim goes, a retry does the work.
                pending.done = True
                owner, principal = pending.owner, pending.principal
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(
                        lambda: self.store.release(principal=principal, key=pending.key, owner=owner)
                    )

    async def _finish(self, pending: PendingKey, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        assert pending.owner is not None
        assert pending.principal is not None
        kept = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k.lower() in _REPLAYED_HEADERS}
        if pending.withheld is not None and status < 400:
            status, kept, body = _withheld(pending.withheld, instance=pending.path)
        owner, principal = pending.owner, pending.principal
        pending.done = True
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(
                lambda: self.store.finish(
                    principal=principal, key=pending.key, owner=owner, status=status, headers=kept, body=body
                )
            )


def _withheld(problem: SecretNotReplayed, *, instance: str) -> tuple[int, dict[str, str], bytes]:
    """What is kept in place of an answer that carried a secret."""
    document = {
        "type": problem_type_uri(problem.slug),
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
        "request_id": current_request_id(),
        **problem.extra,
    }
    return problem.status, {"content-type": PROBLEM_MEDIA_TYPE}, json.dumps(document).encode()


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _problem(scope: Scope, receive: Receive, send: Send, status: int, slug: str, title: str, detail: str) -> None:
    response = problem_response(status=status, slug=slug, title=title, detail=detail, instance=scope["path"])
    await response(scope, receive, send)
