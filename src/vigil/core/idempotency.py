"""Idempotency records: what a POST with an `Idempotency-Key` answered, kept so a retry gets the same answer.

A record is *claimed* (fingerprint of the request, no response yet) once the caller has been authenticated and
authorized, and *finished* with the response once it is fully produced; the web layer drives both
(`vigil.web.idempotency`). Responses of 5xx are not kept, so a retry after a server error does the work.

A claim is held under a lease that its owner renews while the request runs: a process that dies mid-request stops
renewing, and once the lease has run out a retry with the same key takes the claim over (a compare-and-set on the
lease) and does the write, instead of being told "in progress" until the record ages out. Every write names the
claim's `owner`, so a slow original that comes back after a takeover changes nothing.

A claimed request's write is exactly-once even when the process dies between its commit and the recording of its
answer: the record is marked *applied* (`mark_applied`) in the write's own transaction, with how its answer can be
rebuilt (a status and the location of what it made, e.g. `201` + `/api/v1/datasets/<id>`). A retry that finds an
applied record whose answer is missing is answered from that location (`Applied`), never by running the write again;
and a request whose claim was taken over (its lease ran out while it was frozen or partitioned) cannot mark it, so
its write is rolled back instead of applied a second time.

Old records are removed by housekeeping (`prune`, over an index on `created_at`), never in a request's path; a
record older than `RETENTION` that housekeeping has not reached yet counts as absent.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Index, String, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from vigil.core.database import Base, Database, utcnow

MAX_KEY_LENGTH = 255
MAX_LOCATION_LENGTH = 500
RETENTION = timedelta(hours=24)

Verdict = Literal["mismatch", "in-progress"]
# `Session.info` flag of the store's own sessions: they record the claim and must not mark it applied.
STORE_SESSION = "vigil.idempotency.store"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (Index("ix_idempotency_records_created_at", "created_at"),)

    principal: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    headers: Mapped[dict[str, Any] | None]
    body: Mapped[bytes | None]
    created_at: Mapped[datetime]
    # The claim's holder (a random token per request) and until when it holds it; null once finished.
    owner: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None]
    # Set in the transaction of the request's write: the write is done, a retry must not do it again; the answer
    # is rebuilt from `answer_location` (read back) with `answer_status` if the recorded answer is missing.
    applied_at: Mapped[datetime | None]
    answer_status: Mapped[int | None]
    answer_location: Mapped[str | None] = mapped_column(String(MAX_LOCATION_LENGTH))


class Claim(str):
    """The token of a claim this request holds: it must be presented to renew, finish or release it."""


@dataclass(frozen=True)
class Applied:
    """A request whose write was applied and whose answer was lost (its process died, or recording it failed):
    a retry is answered by reading `location` back (with `status`), or, with no location, told so."""

    status: int | None
    location: str | None


class IdempotencyStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def claim(
        self, *, principal: str, key: str, fingerprint: str, lease_s: float
    ) -> Claim | IdempotencyRecord | Applied | Verdict:
        """A claim (the request may run), the finished record to replay, an applied write whose answer must be
        rebuilt, or why the request must be refused."""
        owner = Claim(secrets.token_hex(16))
        now = utcnow()
        lease = now + timedelta(seconds=lease_s)
        with self._session() as session:
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
                        created_at=now,
                        owner=owner,
                        lease_expires_at=lease,
                    )
                )
                try:
                    session.flush()
                except IntegrityError:  # claimed by a concurrent request a moment ago
                    return "in-progress"
                return owner
            aged_out = existing.created_at < now - RETENTION
            abandoned = existing.status_code is None and (
                existing.lease_expires_at is None or existing.lease_expires_at < now
            )
            if not aged_out and existing.fingerprint != fingerprint:
                return "mismatch"
            if not aged_out and existing.status_code is not None:
                session.expunge(existing)
                return existing
            if not aged_out and not abandoned:
                return "in-progress"
            if not aged_out and existing.applied_at is not None:
                # Its write committed, its answer was never recorded: never run it again.
                return Applied(status=existing.answer_status, location=existing.answer_location)
            # Take over an aged-out record or a claim whose lease ran out — only if nobody else just did.
            taken = session.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.principal == principal,
                    IdempotencyRecord.key == key,
                    IdempotencyRecord.created_at == existing.created_at,
                    _same(IdempotencyRecord.owner, existing.owner),
                    _same(IdempotencyRecord.lease_expires_at, existing.lease_expires_at),
                )
                .values(
                    fingerprint=fingerprint,
                    status_code=None,
                    headers=None,
                    body=None,
                    created_at=existing.created_at if not aged_out else now,
                    owner=owner,
                    lease_expires_at=lease,
                    applied_at=None,
                    answer_status=None,
                    answer_location=None,
                )
                .execution_options(synchronize_session=False)
            )
            return owner if _rowcount(taken) == 1 else "in-progress"

    @staticmethod
    def mark_applied(
        session: Session, *, principal: str, key: str, owner: Claim, status: int | None, location: str | None
    ) -> bool:
        """In the transaction of the request's write: the write is done (and how to rebuild its answer). False if
        the claim is no longer this owner's — a retry took it over — and then the caller must not commit."""
        values: dict[str, Any] = {"applied_at": utcnow()}
        if location is not None:
            values.update(answer_status=status, answer_location=location[:MAX_LOCATION_LENGTH])
        marked = session.execute(
            update(IdempotencyRecord)
            .where(*_held(principal, key, owner))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(marked) == 1

    def renew(self, *, principal: str, key: str, owner: Claim, lease_s: float) -> bool:
        """Extends a claim's lease while its request runs; False once the claim is no longer this owner's."""
        with self._session() as session:
            renewed = session.execute(
                update(IdempotencyRecord)
                .where(*_held(principal, key, owner))
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
                .execution_options(synchronize_session=False)
            )
            return _rowcount(renewed) == 1

    def finish(
        self, *, principal: str, key: str, owner: Claim, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        """Keeps the response for replay, or forgets the claim after a server error (a retry does the work)."""
        if status >= 500:
            self.release(principal=principal, key=key, owner=owner)
            return
        with self._session() as session:
            session.execute(
                update(IdempotencyRecord)
                .where(*_held(principal, key, owner))
                .values(status_code=status, headers=headers, body=body, owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )

    def release(self, *, principal: str, key: str, owner: Claim) -> None:
        """Gives a claim up (the request failed before it had an answer): a retry does the work — unless the write
        was applied, and then the record stays, abandoned at once, so the retry rebuilds the answer instead."""
        with self._session() as session:
            session.execute(
                delete(IdempotencyRecord).where(*_held(principal, key, owner), IdempotencyRecord.applied_at.is_(None))
            )
            session.execute(
                update(IdempotencyRecord)
                .where(*_held(principal, key, owner))
                .values(owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )

    def prune(self, *, now: datetime | None = None) -> int:
        """Housekeeping: removes the records past `RETENTION`; returns how many."""
        cutoff = (now or utcnow()) - RETENTION
        with self._session() as session:
            pruned = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))
            return _rowcount(pruned)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self.database.session() as session:
            session.info[STORE_SESSION] = True
            yield session


def _held(principal: str, key: str, owner: Claim) -> tuple[Any, ...]:
    return (
        IdempotencyRecord.principal == principal,
        IdempotencyRecord.key == key,
        IdempotencyRecord.owner == owner,
        IdempotencyRecord.status_code.is_(None),
    )


def _same(column: Any, value: object) -> Any:
    return column.is_(None) if value is None else column == value


def _rowcount(result: Any) -> int:
    count: int = result.rowcount
    return count
