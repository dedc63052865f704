"""Exactly once, across a crash: a claimed request's write marks the record applied in the write's own transaction (a
`before_commit` hook on the app's sessions, `track_writes`), with how its answer is rebuilt — the route says so with
`replay_created` (what it makes, and where that is read back) or `replay_from` (a fixed location). If the process
dies after that commit and before the answer is recorded, the retry that finds the applied record is answered by
reading the location back (`AppliedReplay`), never by running the write again; a route that declared nothing
answers `answer-lost`; a route whose own logic makes a re-run harmless (a stream's events, by `seq`) says
`rerun_is_safe`. A request that lost its claim (it ran past its lease and a retry took over) cannot mark it: its
commit fails and its write is rolled back.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import Request
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response
from starlette.types import Message, Scope

from vigil.core.errors import ClaimTakenOver, SecretNotReplayed
from vigil.core.idempotency import STORE_SESSION, Applied, Claim, IdempotencyStore

_REPLAYED_HEADERS = (b"content-type", b"location")
# What a read-back of an applied write carries over from the retry: who is asking, and from where.
_READ_BACK_HEADERS = (b"authorization", b"x-api-key", b"cookie", b"host", b"user-agent", b"x-forwarded-for")


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
CURRENT: ContextVar[PendingKey | None] = ContextVar("vigil.idempotency.pending", default=None)


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
    pending = CURRENT.get()
    if pending is not None:
        pending.answer = pending.answer or Answer()
        pending.answer.rerun = True


def _declare(made: Made) -> None:
    pending = CURRENT.get()
    if pending is not None:
        pending.answer = pending.answer or Answer()
        pending.answer.made.append(made)


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


async def _read_back(request: Request, location: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """`GET location` through the whole app (authentication, tenancy, the route), as the caller of `request`."""
    path, _, query = location.partition("?")
    scope: Scope = {
        "type": "http",
        "asgi": request.scope.get("asgi", {"version": "3.0"}),
        "http_version": request.scope.get("http_version", "1.1"),
        "method": "GET",
        "scheme": request.scope.get("scheme", "http"),
        "path": path,
        "raw_path": path.encode(),
        "root_path": request.scope.get("root_path", ""),
        "query_string": query.encode(),
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
    pending = CURRENT.get()
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
    assert pending.owner is not None
    assert pending.principal is not None
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
