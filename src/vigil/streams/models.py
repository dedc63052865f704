"""Stream tables: the stream and its counters, the write-ahead log of applied batches, state snapshots, flagged
events and drift events. Every row carries `tenant_id` (row-level security on PostgreSQL, migration 0007)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.database import Base, utcnow

_STREAM_FK = "streams.id"


class Stream(Base):
    """A stream's configuration (fixed at creation, but for its name and description) and what it has done.

    `state_version` counts applied batches: the in-memory model of any process is current exactly when it has
    applied as many, and a batch is committed only if the version it started from is still the stored one.
    """

    __tablename__ = "streams"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    algorithm: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]]
    features: Mapped[list[Any]]
    scaling: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[dict[str, Any]]
    warmup: Mapped[int]
    drift_delta: Mapped[float | None]
    detector_id: Mapped[str | None] = mapped_column(String(32))
    model_version: Mapped[int | None]
    state_version: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seq: Mapped[int | None] = mapped_column(BigInteger)
    events_seen: Mapped[int] = mapped_column(BigInteger, default=0)
    anomaly_count: Mapped[int] = mapped_column(BigInteger, default=0)
    drift_count: Mapped[int] = mapped_column(BigInteger, default=0)
    current_threshold: Mapped[float | None]
    last_event_at: Mapped[datetime | None]
    snapshot_version: Mapped[int] = mapped_column(BigInteger, default=0)
    snapshot_events: Mapped[int] = mapped_column(BigInteger, default=0)
    snapshot_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StreamBatch(Base):
    """The write-ahead log: one row per applied batch (its new events, their scores and flags, in `wal.py`'s
    binary layout), committed with the stream's new version before the client is answered."""

    __tablename__ = "stream_batches"

    stream_id: Mapped[str] = mapped_column(ForeignKey(_STREAM_FK, ondelete="CASCADE"), primary_key=True)
    state_version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    n_events: Mapped[int]
    n_anomalies: Mapped[int]
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class StreamSnapshot(Base):
    """The whole learnt state after `state_version` batches (signed bytes, `ml.dump_state`)."""

    __tablename__ = "stream_snapshots"

    stream_id: Mapped[str] = mapped_column(ForeignKey(_STREAM_FK, ondelete="CASCADE"), primary_key=True)
    state_version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    last_seq: Mapped[int | None] = mapped_column(BigInteger)
    events_seen: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StreamAnomaly(Base):
    """A flagged event, kept with its values and score (the WAL is pruned; these are not)."""

    __tablename__ = "stream_anomalies"
    __table_args__ = (Index("ix_stream_anomalies_stream_seq", "stream_id", "seq"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    stream_id: Mapped[str] = mapped_column(ForeignKey(_STREAM_FK, ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    score: Mapped[float]
    threshold: Mapped[float | None]
    values: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StreamDrift(Base):
    """A change detected in the stream's scores (ADWIN), at the event `seq`."""

    __tablename__ = "stream_drifts"
    __table_args__ = (Index("ix_stream_drifts_stream_seq", "stream_id", "seq"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    stream_id: Mapped[str] = mapped_column(ForeignKey(_STREAM_FK, ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    detector: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
