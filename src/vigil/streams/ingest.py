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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil import ml
from vigil.core.context import AppContext
from vigil.core.database import TenantScope, utcnow
from vigil.core.errors import InvalidInput, InvalidState, NotFound, RateLimited, VigilError
from vigil.core.ids import new_id
from vigil.detectors.service import DetectorService, ml_problem
from vigil.identity.quotas import policy_of
from vigil.identity.ratelimit import RateLimiter, quota_per_seconds
from vigil.streams import wal
from vigil.streams.events import CheckedBatch, check_events
from vigil.streams.models import Stream, StreamBatch
from vigil.streams.repository import StreamRepository
from vigil.streams.schemas import Batch, Event
from vigil.streams.state import HotState, StreamHead, StreamRuntime, compact_later, snapshot

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


@dataclass
class _Tally:
    """What a transaction's batches did so far: the version they reach, and what the metrics will count."""

    version: int
    statuses: Counter[str] = field(default_factory=Counter)
    anomalies: int = 0
    drifts: int = 0


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
        if len(events) > limit:  # refused before the stream is even read
            raise BatchTooLarge(limit=limit, got=len(events))
        (answer,) = self.run_many(stream_id=stream_id, batches=[events])
        if isinstance(answer, VigilError):
            raise answer
        return answer

    def run_many(self, *, stream_id: str, batches: Sequence[Sequence[Event]]) -> list[Batch | VigilError]:
        """Consecutive batches of one client (a WebSocket's in-flight frames) in one transaction: one commit — one
        fsync — for all. Each batch is still checked and answered on its own, in order: a refused one is answered
        with its problem and changes nothing, and the others go on; after a rate-limited one nothing more is
        applied (its answer ends the list). Every batch answered with scores is durable before any answer."""
        with self.runtime.lock(stream_id):
            for _ in range(_ATTEMPTS):
                try:
                    return self._apply(stream_id, batches)
                except _Stale:
                    self.session.rollback()
            raise InvalidState("The stream kept changing under this batch; retry it.")

    def _apply(self, stream_id: str, batches: Sequence[Sequence[Event]]) -> list[Batch | VigilError]:
        # One scalar read (PostgreSQL: FOR UPDATE, which also orders processes); the whole row only when this
        # process's model is not at the stored version.
        version = self.streams.version_of(stream_id, for_update=True)
        if version is None:
            raise NotFound("stream", stream_id)
        hot = self.runtime.take(stream_id)
        if hot is not None:
            hot.settle()
        if hot is None or hot.version != version:
            stream = self.streams.get(stream_id)
            if stream is None:
                raise NotFound("stream", stream_id)
            hot = self._current(stream, hot)
        answers: list[Batch | VigilError] = []
        tally = _Tally(version=version)
        try:
            for events in batches:
                try:
                    answers.append(self._one(hot, events, tally))
                except RateLimited as exc:
                    answers.append(exc)
                    break
                except (InvalidInput, BatchTooLarge) as exc:
                    answers.append(exc)
            if tally.version == version:  # nothing new: nothing to write, and the model learnt nothing
                self.session.rollback()
                self.runtime.keep(stream_id, hot)
                self._count(tally)
                return answers
            self._finish(hot, from_version=version, to_version=tally.version)
        except IntegrityError as exc:  # another process wrote this version's log record first
            self.session.rollback()
            raise _Stale from exc
        except BaseException:
            self.session.rollback()
            raise  # the half-taught model is dropped: `take` removed it from the cache
        self.runtime.keep(
            stream_id, HotState(version=tally.version, model=hot.model, head=hot.head, compacting=hot.compacting)
        )
        self._count(tally)
        return answers

    def _one(self, hot: HotState, events: Sequence[Event], tally: _Tally) -> Batch:
        """One batch: checked, its duplicates answered from the log, its new events scored, learnt and written
        (not committed); `hot.head` and `tally` move along."""
        limit = self.app.settings.stream_max_batch_events
        if len(events) > limit:
            raise BatchTooLarge(limit=limit, got=len(events))
        head = hot.head
        checked = check_events(events, head.features)
        self._limit_rate(len(checked))
        old, fresh = checked.split(head.last_seq)
        results = self._answer_old(head, old) if old else []
        for answer in results:
            tally.statuses[answer["status"]] += 1
        if fresh:
            step = hot.model.process(fresh.rows)
            tally.version += 1
            self._write(head, tally.version, fresh, step, hot.model)
            tally.statuses["new"] += len(fresh)
            tally.anomalies += sum(step.flags)
            tally.drifts += len(step.drifts)
            results += [
                {"seq": seq, "score": score, "is_anomaly": flag, "status": "new"}
                for seq, score, flag in zip(fresh.seqs, step.scores, step.flags, strict=True)
            ]
        return _batch(results, head, accepted=len(fresh))

    def _count(self, tally: _Tally) -> None:
        for status, seen in tally.statuses.items():
            if seen:
                self.app.metrics.stream_events.labels(status).inc(seen)
        self.app.metrics.stream_anomalies.inc(tally.anomalies)
        self.app.metrics.stream_drifts.inc(tally.drifts)

    def _write(self, head: StreamHead, version: int, fresh: CheckedBatch, step: ml.Step, model: ml.OnlineModel) -> None:
        """Adds the batch's log record (as `version`), flagged events and drift events to the transaction, and moves
        `head`'s counters along (a head whose transaction fails is dropped with its model)."""
        now = utcnow()
        flagged = [i for i, flag in enumerate(step.flags) if flag]
        self.streams.add_batch(
            stream_id=head.id,
            state_version=version,
            tenant_id=self.scope.tenant_id,
            first_seq=fresh.seqs[0],
            last_seq=fresh.seqs[-1],
            n_events=len(fresh),
            n_anomalies=len(flagged),
            body=wal.encode(fresh.seqs, fresh.values, step.scores, step.flags, width=fresh.width),
            received_at=now,
        )
        if flagged:
            self.streams.add_anomalies(
                [
                    {
                        "id": new_id("anm"),
                        "tenant_id": self.scope.tenant_id,
                        "stream_id": head.id,
                        "seq": fresh.seqs[i],
                        "score": step.scores[i],
                        "threshold": step.thresholds.get(i),
                        "values": fresh.rows[i],
                        "created_at": now,
                    }
                    for i in flagged
                ]
            )
        if step.drifts:
            self.streams.add_drifts(
                [
                    {
                        "id": new_id("drf"),
                        "tenant_id": self.scope.tenant_id,
                        "stream_id": head.id,
                        "seq": fresh.seqs[i],
                        "detector": "adwin",
                        "details": details,
                        "created_at": now,
                    }
                    for i, details in step.drifts
                ]
            )
        head.last_seq = fresh.seqs[-1]
        head.events_seen += len(fresh)
        head.anomaly_count += len(flagged)
        head.drift_count += len(step.drifts)
        head.current_threshold = _finite(model.current_threshold)

    def _finish(self, hot: HotState, *, from_version: int, to_version: int) -> None:
        """Moves the stream from `from_version` to `to_version` with `hot.head`'s counters and, every N events or T
        seconds, a snapshot; commits. Raises `_Stale` when another process moved the stream first."""
        head, now = hot.head, utcnow()
        values: dict[str, Any] = {
            "last_seq": head.last_seq,
            "events_seen": head.events_seen,
            "anomaly_count": head.anomaly_count,
            "drift_count": head.drift_count,
            "current_threshold": head.current_threshold,
            "last_event_at": now,
        }
        settings = self.app.settings
        age = timedelta(seconds=settings.stream_snapshot_every_s)
        due = head.snapshot_at is None or now - head.snapshot_at >= age
        dumped = None
        if due or head.events_seen - head.snapshot_events >= settings.stream_snapshot_every_events:
            taken = snapshot(
                head.id,
                hot.model,
                scope=self.scope,
                key=self.app.artifact_key,
                version=to_version,
                last_seq=head.last_seq,
                events_seen=head.events_seen,
            )
            self.streams.add_snapshot(taken)
            dumped = taken.state
            # Keep the previous snapshot and the log after it: one snapshot to spare, and recent duplicates answered.
            self.streams.prune(head.id, keep_from_version=head.snapshot_version)
            values.update(snapshot_version=to_version, snapshot_events=head.events_seen, snapshot_at=now)
        if not self.streams.advance(stream_id=head.id, from_version=from_version, to_version=to_version, values=values):
            raise _Stale
        self.session.commit()
        if dumped is not None:
            # Dumping the snapshot slowed the live model's attribute reads down (`OnlineModel.compacted`): its
            # compacted copy is the snapshot loaded again, in the background from here, and swapped in by the next
            # batch (`HotState.settle`). Started only now: in this process's interpreter lock, it would slow this
            # batch's own statements and commit down (measured), not the answer, the client's turn and the next
            # request's parsing, which it overlaps.
            hot.compacting = compact_later(dumped, key=self.app.artifact_key, scorer=hot.model.scorer)
        head.snapshot_version = values.get("snapshot_version", head.snapshot_version)
        head.snapshot_events = values.get("snapshot_events", head.snapshot_events)
        head.snapshot_at = values.get("snapshot_at", head.snapshot_at)

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

    def _answer_old(self, head: StreamHead, seqs: builtins.list[int]) -> builtins.list[dict[str, Any]]:
        """Events at or below last_seq, in order: their first answer when the log still has it; never learnt
        again."""
        known: dict[int, tuple[float, bool]] = {}
        wanted = set(seqs)
        for batch in self.streams.batches_covering(head.id, min(seqs), max(seqs)):
            record = wal.decode(batch.body, head.features)
            for seq, score, flag in zip(record.seqs, record.scores, record.flags, strict=True):
                if seq in wanted:
                    known[seq] = (score, flag)
        answers: builtins.list[dict[str, Any]] = []
        for seq in seqs:
            if seq in known:
                answers.append({"seq": seq, "score": known[seq][0], "is_anomaly": known[seq][1], "status": "duplicate"})
            else:
                answers.append({"seq": seq, "score": None, "is_anomaly": None, "status": "late"})
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


def batch_model(
    *, session: Session, scope: TenantScope, app: AppContext, detector_id: str, version: int | None
) -> tuple[Any, Any, ml.FittedDetector]:
    """A trained detector's model version (detector, version row, fitted model), for a stream that applies it."""
    return DetectorService(session=session, scope=scope, app=app).load_model(detector_id=detector_id, version=version)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _batch(results: builtins.list[dict[str, Any]], head: StreamHead, *, accepted: int) -> Batch:
    return Batch(
        results=results,
        last_seq=head.last_seq,
        accepted=accepted,
        duplicates=len(results) - accepted,
        threshold=head.current_threshold,
    )
