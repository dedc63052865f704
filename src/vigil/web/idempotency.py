"""`Idempotency-Key` on POST: a retried request returns the first response instead of doing the work twice.

Two halves. The middleware reads the body once (to fingerprint the request), leaves a `PendingKey` in the request
scope, and afterwards records the response. The decision — claim, replay or refuse — is taken by `admit`, which the
route's authorization dependency calls once the caller is authenticated, rate-limited and holds the route's
permission (`identity.dependencies.require`): so a stored response is replayed only to a caller who may still make
the request (a logged-out token, a disabled user, a revoked key or a demoted role gets its 401/403, never the
replay), and keys belong to the principal the server resolved (a user or an API key), not to a header's bytes.
Routes without a declared permission (logging in) never claim: their keys are ignored.

Exactly once, across a crash: a claimed request's write marks the record applied in the write's own transaction (a
`before_commit` hook on the app's sessions, `track_writes`), with how its answer is rebuilt — the route says so with
`replay_created` (what it makes, and where that is read back) or `replay_from` (a fixed location). If the process
dies after that commit and before the answer is recorded, the retry that finds the applied record is answered by
reading the location back (`AppliedReplay`), never by running the write again; a route that declared nothing
answers `answer-lost`; a route whose own logic makes a re-run harmless (a stream's events, by `seq`) says
`rerun_is_safe`. A request that lost its claim (it ran past its lease and a retry took over) cannot mark it: its
commit fails and its write is rolled back.

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
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import FastAPI, Request
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.database import Database
from vigil.core.errors import (
    AnswerLost,
    ClaimTakenOver,
    Conflict,
    InvalidInput,
    PayloadTooLarge,
    SecretNotReplayed,
    problem_type_uri,
)
from vigil.core.idempotency import MAX_KEY_LENGTH, STORE_SESSION, Applied, Claim, IdempotencyRecord, IdempotencyStore
from vigil.core.logging import current_request_id
from vigil.web.problems import PROBLEM_MEDIA_TYPE, problem_response

HEADER = b"idempotency-key"
SCOPE_KEY = "vigil.idempotency"
_REPLAYED_HEADERS = (b"content-type", b"location")
# What a read-back of an applied write carries over from the retry: who is asking, and from where.
_READ_BACK_HEADERS = (b"authorization", b"x-api-key", b"cookie", b"host", b"user-agent", b"x-forwarded-for")
log = logging.getLogger("vigil.idempotency")


@dataclass(frozen=True)
class Made:
    """What a route makes (rows of `table`) and where one is read back (`location`, formatted with the row's
    attributes, e.g. "/api/v1/datasets/{id}"), answered with `status`. A `table` of None: a fixed location."""

    table: str | None
    location: str
    status: int


@dataclass
class Answer:
    """How the answer of a request whose write was applied is rebuilt: the first of `made` that the write
    produced; or `rerun` — the route's own logic makes running it again harmless."""

    made: list[Made] = field(default_factory=list)
    rerun: bool = False


@dataclass
class PendingKey:
    """An `Idempotency-Key` on its way through one request."""

    key: str
    fingerprint: str
    path: str
    store: IdempotencyStore
    lease_s: float
    admitted: bool = False
    principal: str | None = None
    owner: Claim | None = None  # set when this request holds the claim and must finish it
    withheld: SecretNotReplayed | None = None
    answer: Answer | None = None
    done: bool = False


# The key of the request this task (or a worker thread it handed work to, which gets a copy of the context) serves.
_CURRENT: ContextVar[PendingKey | None] = ContextVar("vigil.idempotency.pending", default=None)


def replay_created(table: str, location: str, *, status: int = 201) -> None:
    """This request makes a row of `table`; if its answer is lost after the write, a retry reads `location` (the
    row's attributes filled in) back and answers it with `status`. Called again, it adds an alternative (the first
    one the write made wins)."""
    _declare(Made(table=table, location=location, status=status))


def replay_from(location: str, *, status: int = 200) -> None:
    """If this request's answer is lost after its write, a retry reads `location` back (with `status`)."""
    _declare(Made(table=None, location=location, status=status))


def rerun_is_safe() -> None:
    """This route's own logic answers a second run without applying it twice (a stream's events, by `seq`): a
    retry after a lost answer simply runs it again."""
    pending = _CURRENT.get()
    if pending is not None:
        pending.answer = pending.answer or Answer()
        pending.answer.rerun = True


def _declare(made: Made) -> None:
    pending = _CURRENT.get()
    if pending is not None:
        pending.answer = pending.answer or Answer()
        pending.answer.made.append(made)


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


class AppliedReplay(Exception):
    """Raised by `admit` for a request that was applied and lost its answer (handled by `applied_handler`)."""

    def __init__(self, applied: Applied) -> None:
        super().__init__("applied, answer rebuilt")
        self.applied = applied


async def applied_handler(request: Request, exc: Exception) -> Response:
    """The answer of an applied write, rebuilt: its location read back as the retrying caller, with the status the
    write answered (a read that fails — the resource was deleted since — is answered as it is)."""
    assert isinstance(exc, AppliedReplay)
    location = exc.applied.location
    assert location is not None
    status, headers, body = await _read_back(request, location)
    kept = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k.lower() in _REPLAYED_HEADERS}
    if status == 200:
        status = exc.applied.status or 200
        if status == 201:
            kept["location"] = location
    return Response(content=body, status_code=status, headers={**kept, "Idempotent-Replayed": "true"})


async def _read_back(request: Request, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """`GET path` through the whole app (authentication, tenancy, the route), as the caller of `request`."""
    scope: Scope = {
        "type": "http",
        "asgi": request.scope.get("asgi", {"version": "3.0"}),
        "http_version": request.scope.get("http_version", "1.1"),
        "method": "GET",
        "scheme": request.scope.get("scheme", "http"),
        "path": path,
        "raw_path": path.encode(),
        "root_path": request.scope.get("root_path", ""),
        "query_string": b"",
        "headers": [(k, v) for k, v in request.scope.get("headers", []) if k.lower() in _READ_BACK_HEADERS],
        "client": request.scope.get("client"),
        "server": request.scope.get("server"),
    }
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    body = bytearray()
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    async with anyio.create_task_group() as tasks:  # a child task: its request context is its own
        tasks.start_soon(request.app, scope, receive, send)
    return status, headers, bytes(body)


def install(app: FastAPI, *, database: Database, lease_s: float) -> None:
    app.add_exception_handler(IdempotentReplay, replay_handler)
    app.add_exception_handler(AppliedReplay, applied_handler)
    app.add_middleware(IdempotencyMiddleware, database=database, lease_s=lease_s)
    track_writes(database.sessions)


_WROTE = "vigil.idempotency.wrote"
_MADE = "vigil.idempotency.made"


def track_writes(sessions: sessionmaker[Session]) -> None:
    """A commit that writes, on behalf of a request holding a claim, marks the claim applied in the same
    transaction (or fails, if the claim was taken over)."""
    event.listen(sessions, "after_flush", _after_flush)
    event.listen(sessions, "do_orm_execute", _on_execute)
    event.listen(sessions, "before_commit", _before_commit)
    event.listen(sessions, "after_commit", _forget)
    event.listen(sessions, "after_rollback", _forget)


def _claimed(session: Session) -> PendingKey | None:
    pending = _CURRENT.get()
    if pending is None or pending.owner is None or pending.principal is None or pending.done:
        return None
    if session.info.get(STORE_SESSION):
        return None
    return pending


def _after_flush(session: Session, _context: Any) -> None:
    if _claimed(session) is not None:
        session.info[_WROTE] = True
        session.info.setdefault(_MADE, []).extend(session.new)


def _on_execute(state: Any) -> None:
    if (state.is_insert or state.is_update or state.is_delete) and _claimed(state.session) is not None:
        state.session.info[_WROTE] = True


def _before_commit(session: Session) -> None:
    pending = _claimed(session)
    if pending is None or (pending.answer is not None and pending.answer.rerun):
        return
    if not (session.info.get(_WROTE) or session.new or session.dirty or session.deleted):
        return
    made = [*session.info.get(_MADE, []), *session.new]
    status, location = _answer(pending.answer, made)
    assert pending.owner is not None and pending.principal is not None
    if not pending.store.mark_applied(
        session, principal=pending.principal, key=pending.key, owner=pending.owner, status=status, location=location
    ):
        raise ClaimTakenOver()


def _forget(session: Session) -> None:
    session.info.pop(_WROTE, None)
    session.info.pop(_MADE, None)


def _answer(answer: Answer | None, made: list[Any]) -> tuple[int | None, str | None]:
    for option in answer.made if answer is not None else []:
        if option.table is None:
            return option.status, option.location
        for row in made:
            if getattr(row, "__tablename__", None) == option.table:
                return option.status, option.location.format_map(_Attributes(row))
    return None, None


class _Attributes(dict[str, Any]):
    def __init__(self, row: Any) -> None:
        super().__init__()
        self.row = row

    def __missing__(self, name: str) -> Any:
        return getattr(self.row, name)


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
        current = _CURRENT.set(pending)  # seen by the request's sessions, in this task and the threads it uses
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
            _CURRENT.reset(current)
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
                    log.warning("the answer of %s was not recorded for its Idempotency-Key", pending.path, exc_info=True)
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
