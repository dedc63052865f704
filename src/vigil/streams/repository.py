"""Stream queries, always within one tenant: streams, the write-ahead log, snapshots, anomalies, drift events."""

from __future__ import annotations

import builtins
import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, Update, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from vigil.core.database import TenantScope, bind_tenant
from vigil.streams.models import Stream, StreamAnomaly, StreamBatch, StreamDrift, StreamSnapshot

_BATCHES = cast(Table, StreamBatch.__table__)
_STREAMS = cast(Table, Stream.__table__)
_ANOMALIES = cast(Table, StreamAnomaly.__table__)
_DRIFTS = cast(Table, StreamDrift.__table__)

# The statements of every batch, built once: a statement object keeps its cache key, so a batch costs no
# statement building (a third of its database time when built per call). Table statements, not ORM ones: no
# unit of work and no session synchronisation on the hot path.
# (Bound names differ from the columns': an UPDATE keeps those for its SET clause.) They run on the session's
# connection, not through `Session.execute`: the ORM's execution path (its compile state, `do_orm_execute` hooks)
# cost about as much again as the statement's own execution, and these statements load no objects. What the
# hooks watch is not written here: the caches' tables (identity, detectors), and the idempotency claim of the one
# route that sends events, which declares itself safe to run again (`rerun_is_safe`). The session's transaction
# (its tenant binding, its commit) is the same.
_THIS_STREAM = (_STREAMS.c.id == bindparam("the_stream"), _STREAMS.c.tenant_id == bindparam("the_tenant"))
_VERSION = select(_STREAMS.c.state_version).where(*_THIS_STREAM)
_VERSION_FOR_UPDATE = _VERSION.with_for_update()  # PostgreSQL: other processes wait for this batch
_ADD_BATCH = insert(_BATCHES)
_ADD_ANOMALIES = insert(_ANOMALIES)
_ADD_DRIFTS = insert(_DRIFTS)


@functools.cache
def _advance(columns: tuple[str, ...]) -> Update:
    """`UPDATE streams SET state_version = :state_version, <columns> WHERE <this stream> AND state_version = :from`."""
    return (
        update(_STREAMS)
        .where(*_THIS_STREAM, _STREAMS.c.state_version == bindparam("from_version"))
        .values({name: bindparam(f"new_{name}") for name in ("state_version", *columns)})
    )


class StreamRepository:
    def __init__(self, *, session: Session, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope
        bind_tenant(session, scope)

    @property
    def _tenant(self) -> str:
        return self.scope.tenant_id

    # -- streams ---------------------------------------------------------------------------------------------
    def get(self, stream_id: str, *, for_update: bool = False) -> Stream | None:
        query = select(Stream).where(Stream.id == stream_id, Stream.tenant_id == self._tenant)
        if for_update:
            # PostgreSQL: one batch of a stream at a time across processes; the version check below still holds.
            query = query.with_for_update()
        return self.session.scalar(query.execution_options(populate_existing=True))

    def version_of(self, stream_id: str, *, for_update: bool = False) -> int | None:
        """The stream's state version (None: no such stream in this tenant)."""
        query = _VERSION_FOR_UPDATE if for_update else _VERSION
        version = self.session.connection().scalar(query, {"the_stream": stream_id, "the_tenant": self._tenant})
        return int(version) if version is not None else None

    def list(self, *, limit: int, after_id: str | None) -> Sequence[Stream]:
        query = select(Stream).where(Stream.tenant_id == self._tenant)
        if after_id is not None:
            query = query.where(Stream.id < after_id)
        return self.session.scalars(query.order_by(Stream.id.desc()).limit(limit + 1)).all()

    def count(self) -> int:
        return int(self.session.scalar(select(func.count()).where(Stream.tenant_id == self._tenant)) or 0)

    def add(self, stream: Stream) -> None:
        if stream.tenant_id != self._tenant:
            raise ValueError("a stream belongs to the scope's tenant")
        self.session.add(stream)
        self.session.flush()

    def delete(self, stream: Stream) -> None:
        self.session.delete(stream)

    def advance(self, *, stream_id: str, from_version: int, to_version: int, values: dict[str, Any]) -> bool:
        """Moves the stream to `to_version` with `values`, only if it is still at `from_version`."""
        names = tuple(sorted(values))
        params = {f"new_{name}": value for name, value in values.items()}
        params.update(
            the_stream=stream_id, the_tenant=self._tenant, from_version=from_version, new_state_version=to_version
        )
        return self.session.connection().execute(_advance(names), params).rowcount == 1

    # -- write-ahead log -------------------------------------------------------------------------------------
    def add_batch(self, **row: Any) -> None:
        """One log record, written with a plain INSERT (no unit of work: this is the hot path)."""
        if row["tenant_id"] != self._tenant:
            raise ValueError("a log record belongs to the scope's tenant")
        self.session.connection().execute(_ADD_BATCH, row)

    def batches_after(self, stream_id: str, version: int) -> Sequence[StreamBatch]:
        return self.session.scalars(
            select(StreamBatch)
            .where(
                StreamBatch.stream_id == stream_id,
                StreamBatch.tenant_id == self._tenant,
                StreamBatch.state_version > version,
            )
            .order_by(StreamBatch.state_version)
        ).all()

    def batches_covering(self, stream_id: str, low: int, high: int) -> Sequence[StreamBatch]:
        """Log records that may hold events with seq in [low, high] (for answering duplicates)."""
        return self.session.scalars(
            select(StreamBatch).where(
                StreamBatch.stream_id == stream_id,
                StreamBatch.tenant_id == self._tenant,
                StreamBatch.first_seq <= high,
                StreamBatch.last_seq >= low,
            )
        ).all()

    def events_since(self, stream_id: str, since: datetime) -> tuple[int, int]:
        """Events and anomalies applied since `since` (from the log, whose recent records are never pruned)."""
        row = self.session.execute(
            select(
                func.coalesce(func.sum(StreamBatch.n_events), 0), func.coalesce(func.sum(StreamBatch.n_anomalies), 0)
            ).where(
                StreamBatch.stream_id == stream_id,
                StreamBatch.tenant_id == self._tenant,
                StreamBatch.received_at >= since,
            )
        ).one()
        return int(row[0]), int(row[1])

    def count_batches(self, stream_id: str) -> int:
        return int(
            self.session.scalar(
                select(func.count()).where(StreamBatch.stream_id == stream_id, StreamBatch.tenant_id == self._tenant)
            )
            or 0
        )

    # -- snapshots -------------------------------------------------------------------------------------------
    def add_snapshot(self, snapshot: StreamSnapshot) -> None:
        self.session.add(snapshot)

    def latest_snapshot(self, stream_id: str, *, at_most: int) -> StreamSnapshot | None:
        return self.session.scalar(
            select(StreamSnapshot)
            .where(
                StreamSnapshot.stream_id == stream_id,
                StreamSnapshot.tenant_id == self._tenant,
                StreamSnapshot.state_version <= at_most,
            )
            .order_by(StreamSnapshot.state_version.desc())
            .limit(1)
        )

    def snapshot_info(self, stream_id: str, version: int) -> Row[int, int | None, int, datetime] | None:
        """The snapshot's description, without its (large) state."""
        return self.session.execute(
            select(
                StreamSnapshot.state_version,
                StreamSnapshot.last_seq,
                StreamSnapshot.events_seen,
                StreamSnapshot.created_at,
            ).where(
                StreamSnapshot.stream_id == stream_id,
                StreamSnapshot.tenant_id == self._tenant,
                StreamSnapshot.state_version == version,
            )
        ).one_or_none()

    def prune(self, stream_id: str, *, keep_from_version: int) -> None:
        """Drops snapshots older than `keep_from_version` and the log records that only they needed."""
        for table in (StreamSnapshot, StreamBatch):
            self.session.execute(
                delete(table).where(
                    table.stream_id == stream_id,
                    table.tenant_id == self._tenant,
                    table.state_version < keep_from_version
                    if table is StreamSnapshot
                    else table.state_version <= keep_from_version,
                )
            )

    # -- anomalies and drift events --------------------------------------------------------------------------
    def add_anomalies(self, rows: builtins.list[dict[str, Any]]) -> None:
        """Flagged events, as plain INSERTs (the hot path: no ORM objects, no unit of work to flush)."""
        self.session.connection().execute(_ADD_ANOMALIES, self._own(rows))

    def add_drifts(self, rows: builtins.list[dict[str, Any]]) -> None:
        self.session.connection().execute(_ADD_DRIFTS, self._own(rows))

    def _own(self, rows: builtins.list[dict[str, Any]]) -> builtins.list[dict[str, Any]]:
        if any(row["tenant_id"] != self._tenant for row in rows):
            raise ValueError("a stream's rows belong to the scope's tenant")
        return rows

    def anomalies(self, stream_id: str, *, limit: int, before_seq: int | None) -> Sequence[StreamAnomaly]:
        query = select(StreamAnomaly).where(
            StreamAnomaly.stream_id == stream_id, StreamAnomaly.tenant_id == self._tenant
        )
        if before_seq is not None:
            query = query.where(StreamAnomaly.seq < before_seq)
        return self.session.scalars(query.order_by(StreamAnomaly.seq.desc()).limit(limit + 1)).all()

    def drifts(self, stream_id: str, *, limit: int, before_seq: int | None) -> Sequence[StreamDrift]:
        query = select(StreamDrift).where(StreamDrift.stream_id == stream_id, StreamDrift.tenant_id == self._tenant)
        if before_seq is not None:
            query = query.where(StreamDrift.seq < before_seq)
        return self.session.scalars(
            query.order_by(StreamDrift.seq.desc(), StreamDrift.id.desc()).limit(limit + 1)
        ).all()
