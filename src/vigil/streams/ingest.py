"""Applying a batch of events to a stream: exactly once, in seq order, durably — the write path of HTTP and WebSocket.

`Ingestion.run`: check every event (all or nothing), take the stream's lock in this process and its row
(PostgreSQL `FOR UPDATE`), bring the in-memory model to the stored version (replaying the log it missed), score and
learn the new events, then commit — in one transaction — the log record, the flagged events, the drift events, the
stream's new counters and version (a compare-and-set on the version it started from) and, every N events or T
seconds, a snapshot. Only then is the client answered: an acknowledged event is in the database. A batch that fails
anywhere leaves no trace, and the model that learnt part of it is dropped (it reloads from the database).
"""

from __future__ import annotations

import builtins
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil import ml
from vigil.core.context import AppContext
from vigil.core.database import TenantScope, utcnow
from vigil.core.errors import InvalidState, NotFound, RateLimited, VigilError
from vigil.core.ids import new_id
from vigil.detectors.service import DetectorService, ml_problem
from vigil.identity.quotas import policy_of
from vigil.identity.ratelimit import RateLimiter, quota_per_seconds
from vigil.streams import wal
from vigil.streams.events import CheckedEvent, check_events
from vigil.streams.models import Stream, StreamAnomaly, StreamBatch, StreamDrift, StreamSnapshot
from vigil.streams.repository import StreamRepository
from vigil.streams.schemas import Event
from vigil.streams.state import HotState, StreamHead, StreamRuntime

log = logging.getLogger("vigil.streams")
EVENTS_LIMIT_KEY = "stream-events"
_ATTEMPTS = 5  # a batch that lost a race with another process is retried on the new version


class BatchTooLarge(VigilError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"

    def __init__(self, *, limit: int, got: int) -> None:
        super().__init__(f"A batch holds at most {limit} events; this one has {got}.", limit_events=limit)


class _Stale(Exception):
    """Another process applied a batch first: retry from the version it left."""


class Ingestion:
    """The batches of one unit of work (a session) of one tenant, applied with this process's hot models."""

    def __init__(
        self,
        *,
        session: Session,
        scope: TenantScope,
        app: AppContext,
        runtime: StreamRuntime,
        limiter: RateLimiter | None,
    ) -> None:
        self.session = session
        self.scope = scope
        self.app = app
        self.runtime = runtime
        self.limiter = limiter
        self.streams = StreamRepository(session=session, scope=scope)

    def run(self, *, stream_id: str, events: Sequence[Event]) -> Batch:
        """Applies `events` to the stream (module docstring): its answers, once they are durable."""
        limit = self.app.settings.stream_max_batch_events
        if len(events) > limit:
            raise BatchTooLarge(limit=limit, got=len(events))
        with self.runtime.lock(stream_id):
            for _ in range(_ATTEMPTS):
                try:
                    return self._apply(stream_id, events)
                except _Stale:
                    self.session.rollback()
            raise InvalidState("The stream kept changing under this batch; retry it.")

    def _apply(self, stream_id: str, events: Sequence[Event]) -> Batch:
        # One scalar read (PostgreSQL: FOR UPDATE, which also orders processes); the whole row only when this
        # process's model is not at the stored version.
        version = self.streams.version_of(stream_id, for_update=True)
        if version is None:
            raise NotFound("stream", stream_id)
        hot = self.runtime.take(stream_id)
        if hot is None or hot.version != version:
            stream = self.streams.get(stream_id)
            if stream is None:
                raise NotFound("stream", stream_id)
            hot = self._current(stream, hot)
        head = hot.head
        try:
            checked = check_events(events, head.features)
            self._limit_rate(len(checked))
        except BaseException:
            self.runtime.keep(stream_id, hot)  # nothing was learnt: the model stays good
            self.session.rollback()
            raise
        last = head.last_seq
        fresh = [e for e in checked if last is None or e.seq > last]
        old = [e.seq for e in checked if last is not None and e.seq <= last]
        answers = self._answer_old(head, old) if old else {}
        if not fresh:
            self.runtime.keep(stream_id, hot)
            self.session.rollback()
            self._count(answers, old)
            return _batch([answers[e.seq] for e in checked], head, accepted=0)
        try:
            step = hot.model.process([e.values for e in fresh])
            self._commit(head, version, fresh, step, hot.model)
        except IntegrityError as exc:  # another process wrote this version's log record first
            self.session.rollback()
            raise _Stale from exc
        except BaseException:
            self.session.rollback()
            raise  # the half-taught model is dropped: `take` removed it from the cache
        self.runtime.keep(stream_id, HotState(version=version + 1, model=hot.model, head=head))
        self._count(answers, old)
        self.app.metrics.stream_events.labels("new").inc(len(fresh))
        self.app.metrics.stream_anomalies.inc(sum(step.flags))
        self.app.metrics.stream_drifts.inc(len(step.drifts))
        for event, score, flag in zip(fresh, step.scores, step.flags, strict=True):
            answers[event.seq] = {"seq": event.seq, "score": score, "is_anomaly": flag, "status": "new"}
        return _batch([answers[e.seq] for e in checked], head, accepted=len(fresh))

    def _count(self, answers: dict[int, dict[str, Any]], old: builtins.list[int]) -> None:
        for status in ("duplicate", "late"):
            if seen := sum(1 for seq in old if answers[seq]["status"] == status):
                self.app.metrics.stream_events.labels(status).inc(seen)

    def _commit(
        self, head: StreamHead, version: int, fresh: Sequence[CheckedEvent], step: ml.Step, model: ml.OnlineModel
    ) -> None:
        """Writes the batch (log record, flagged events, drift events, counters, maybe a snapshot) if the stream is
        still at `version`, commits, and moves `head` along; raises `_Stale` otherwise."""
        new_version = version + 1
        now = utcnow()
        flagged = [i for i, flag in enumerate(step.flags) if flag]
        self.streams.add_batch(
            stream_id=head.id,
            state_version=new_version,
            tenant_id=self.scope.tenant_id,
            first_seq=fresh[0].seq,
            last_seq=fresh[-1].seq,
            n_events=len(fresh),
            n_anomalies=len(flagged),
            body=wal.encode([e.seq for e in fresh], [list(e.values.values()) for e in fresh], step.scores, step.flags),
            received_at=now,
        )
        if flagged:
            self.streams.add_all(
                [
                    StreamAnomaly(
                        id=new_id("anm"),
                        tenant_id=self.scope.tenant_id,
                        stream_id=head.id,
                        seq=fresh[i].seq,
                        score=step.scores[i],
                        threshold=step.thresholds.get(i),
                        values=fresh[i].values,
                        created_at=now,
                    )
                    for i in flagged
                ]
            )
        if step.drifts:
            self.streams.add_all(
                [
                    StreamDrift(
                        id=new_id("drf"),
                        tenant_id=self.scope.tenant_id,
                        stream_id=head.id,
                        seq=fresh[i].seq,
                        detector="adwin",
                        details=details,
                        created_at=now,
                    )
                    for i, details in step.drifts
                ]
            )
        events_seen = head.events_seen + len(fresh)
        values: dict[str, Any] = {
            "last_seq": fresh[-1].seq,
            "events_seen": events_seen,
            "anomaly_count": head.anomaly_count + len(flagged),
            "drift_count": head.drift_count + len(step.drifts),
            "current_threshold": _finite(model.current_threshold),
            "last_event_at": now,
        }
        settings = self.app.settings
        age = timedelta(seconds=settings.stream_snapshot_every_s)
        due = head.snapshot_at is None or now - head.snapshot_at >= age
        if due or events_seen - head.snapshot_events >= settings.stream_snapshot_every_events:
            self.streams.add_snapshot(
                snapshot(
                    head.id,
                    model,
                    scope=self.scope,
                    key=self.app.artifact_key,
                    version=new_version,
                    last_seq=fresh[-1].seq,
                    events_seen=events_seen,
                )
            )
            # Keep the previous snapshot and the log after it: one snapshot to spare, and recent duplicates answered.
            self.streams.prune(head.id, keep_from_version=head.snapshot_version)
            values.update(snapshot_version=new_version, snapshot_events=events_seen, snapshot_at=now)
        if not self.streams.advance(stream_id=head.id, from_version=version, values=values):
            raise _Stale
        self.session.commit()
        for name, value in values.items():
            if hasattr(head, name):
                setattr(head, name, value)

    def _current(self, stream: Stream, hot: HotState | None) -> HotState:
        """This process's model of the stream at its stored version: caught up from the log, or reloaded."""
        head = StreamHead.of(stream)
        if hot is not None and hot.version < stream.state_version:
            missed = self.streams.batches_after(stream.id, hot.version)
            if missed and missed[0].state_version == hot.version + 1:
                self.runtime.catch_ups += 1
                self.app.metrics.stream_state_loads.labels("catch_up").inc()
                return self._replay(stream, HotState(version=hot.version, model=hot.model, head=head), missed)
        snapshot = self.streams.latest_snapshot(stream.id, at_most=stream.state_version)
        if snapshot is None:
            raise InvalidState(f"Stream {stream.id!r} has no snapshot to recover from.")
        try:
            model = ml.load_state(
                snapshot.state, key=self.app.artifact_key, scorer=self._scorer_of(stream), also=(self.app.secret_key,)
            )
        except ml.MLError as exc:
            raise ml_problem(exc) from exc
        self.runtime.loads += 1
        self.app.metrics.stream_state_loads.labels("load").inc()
        start = HotState(version=snapshot.state_version, model=model, head=head)
        return self._replay(stream, start, self.streams.batches_after(stream.id, snapshot.state_version))

    def _replay(self, stream: Stream, hot: HotState, batches: Sequence[StreamBatch]) -> HotState:
        for batch in batches:
            if batch.state_version > stream.state_version:
                break
            record = wal.decode(batch.body, stream.features)
            step = hot.model.process(record.events)
            if step.scores != record.scores or step.flags != record.flags:
                # Recovery must end where an uninterrupted run is: a difference is a bug worth an alarm.
                log.error("stream %s: replay of version %d differs from its log", stream.id, batch.state_version)
            hot.version = batch.state_version
        if hot.version != stream.state_version:
            raise InvalidState(f"Stream {stream.id!r}: its log does not reach version {stream.state_version}.")
        return hot

    def _answer_old(self, head: StreamHead, seqs: builtins.list[int]) -> dict[int, dict[str, Any]]:
        """Events at or below last_seq: their first answer when the log still has it; never learnt again."""
        known: dict[int, tuple[float, bool]] = {}
        wanted = set(seqs)
        for batch in self.streams.batches_covering(head.id, min(seqs), max(seqs)):
            record = wal.decode(batch.body, head.features)
            for seq, score, flag in zip(record.seqs, record.scores, record.flags, strict=True):
                if seq in wanted:
                    known[seq] = (score, flag)
        answers: dict[int, dict[str, Any]] = {}
        for seq in seqs:
            if seq in known:
                answers[seq] = {"seq": seq, "score": known[seq][0], "is_anomaly": known[seq][1], "status": "duplicate"}
            else:
                answers[seq] = {"seq": seq, "score": None, "is_anomaly": None, "status": "late"}
        return answers

    def _limit_rate(self, events: int) -> None:
        if self.limiter is None:
            return
        quota = self.runtime.quota(
            self.scope.tenant_id,
            lambda: policy_of(self.session, self.scope, self.app.settings).quotas["stream_events_per_second"],
        )
        decision = self.limiter.hit(quota_per_seconds(quota, 1), EVENTS_LIMIT_KEY, self.scope.tenant_id, cost=events)
        if decision is not None and not decision.allowed:
            raise RateLimited(
                f"The tenant's limit of {quota} stream events per second is reached; nothing of this batch was "
                "learnt. Send it again shortly.",
                retry_after_s=max(1, decision.reset_s),
                headers=decision.headers(),
                quota="stream_events_per_second",
                limit=quota,
                used=decision.limit - decision.remaining,
            )

    def _scorer_of(self, stream: Stream) -> ml.FittedDetector | None:
        if stream.detector_id is None:
            return None
        try:
            return batch_model(
                session=self.session,
                scope=self.scope,
                app=self.app,
                detector_id=stream.detector_id,
                version=stream.model_version,
            )[2]
        except NotFound as exc:
            raise InvalidState(
                f"The model this stream applies (detector {stream.detector_id!r}, version {stream.model_version}) "
                "no longer exists; create a new stream.",
            ) from exc


def snapshot(
    stream_id: str,
    model: ml.OnlineModel,
    *,
    scope: TenantScope,
    key: bytes,
    version: int,
    last_seq: int | None,
    events_seen: int,
) -> StreamSnapshot:
    """The model's signed state at `version`: recovery starts from the latest one and replays the log after it."""
    return StreamSnapshot(
        stream_id=stream_id,
        state_version=version,
        tenant_id=scope.tenant_id,
        last_seq=last_seq,
        events_seen=events_seen,
        state=ml.dump_state(model, key=key),
        created_at=utcnow(),
    )


def batch_model(
    *, session: Session, scope: TenantScope, app: AppContext, detector_id: str, version: int | None
) -> tuple[Any, Any, ml.FittedDetector]:
    """A trained detector's model version (detector, version row, fitted model), for a stream that applies it."""
    return DetectorService(session=session, scope=scope, app=app).load_model(detector_id=detector_id, version=version)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class Batch:
    """What a batch did, ready for the wire: plain JSON-safe dicts (no model per event on the hot path); its shape is
    `EventsResponse`."""

    results: builtins.list[dict[str, Any]]
    last_seq: int | None
    accepted: int
    duplicates: int
    threshold: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "last_seq": self.last_seq,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "threshold": self.threshold,
        }


def _batch(results: builtins.list[dict[str, Any]], head: StreamHead, *, accepted: int) -> Batch:
    return Batch(
        results=results,
        last_seq=head.last_seq,
        accepted=accepted,
        duplicates=len(results) - accepted,
        threshold=head.current_threshold,
    )
