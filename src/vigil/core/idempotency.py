"""Idempotency records: what a POST with an `Idempotency-Key` answered, kept so a retry gets the same answer.

A record is claimed (fingerprint of the request, no response yet) before the work and finished with the response
after it; the web layer's middleware (`vigil.web.idempotency`) drives both. Responses of 5xx are not kept, so a
retry after a server error does the work.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.database import Base, Database, utcnow

MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)

Verdict = Literal["claimed", "mismatch", "in-progress"]


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    principal: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    headers: Mapped[dict[str, Any] | None]
    body: Mapped[bytes | None]
    created_at: Mapped[datetime]


class IdempotencyStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def claim(self, *, principal: str, key: str, fingerprint: str) -> IdempotencyRecord | Verdict:
        """The finished record to replay, or whether this request may run (`claimed`) or must be refused."""
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

    def finish(self, *, principal: str, key: str, status: int, headers: dict[str, str], body: bytes) -> None:
        """Keeps the response for replay, or forgets the claim after a server error (a retry does the work)."""
        with self.database.session() as session:
            record = session.get(IdempotencyRecord, (principal, key))
            if record is None:
                return
            if status >= 500:
                session.delete(record)
                return
            record.status_code = status
            record.headers = headers
            record.body = body
