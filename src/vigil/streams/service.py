"""Stream use cases: configure streams and read what they found; applying batches of events is `ingest.py`'s."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from vigil import ml
from vigil.core.context import AppContext
from vigil.core.database import TenantScope, utcnow
from vigil.core.errors import InvalidInput, NotFound, VigilError
from vigil.core.ids import new_id
from vigil.core.pagination import decode_cursor, encode_cursor
from vigil.detectors.service import ml_problem
from vigil.identity.quotas import policy_of
from vigil.identity.ratelimit import RateLimiter, quota_per_seconds
from vigil.streams.ingest import EVENTS_LIMIT_KEY, Ingestion, batch_model
from vigil.streams.models import Stream
from vigil.streams.repository import StreamRepository
from vigil.streams.schemas import (
    AnomalyPublic,
    Batch,
    DriftPublic,
    Event,
    SnapshotPublic,
    StreamCreate,
    StreamMetrics,
    StreamPublic,
    StreamUpdate,
)
from vigil.streams.state import HotState, StreamHead, StreamRuntime, snapshot

DEFAULT_ALGORITHM = "hst"
METRICS_WINDOW_S = 60
LATEST_DRIFTS = 10


class StreamService:
    def __init__(
        self,
        *,
        session: Session,
        scope: TenantScope,
        app: AppContext,
        runtime: StreamRuntime | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        """`runtime` (the process's hot models) is needed to apply events; counting and reading do without."""
        self.session = session
        self.scope = scope
        self.app = app
        self.runtime = runtime if runtime is not None else StreamRuntime(capacity=1)
        self.limiter = limiter
        self.streams = StreamRepository(session=session, scope=scope)

    # -- quotas ----------------------------------------------------------------------------------------------
    def count(self) -> int:
        return self.streams.count()

    def events_this_second(self, *, limit: int) -> int:
        """How many events the tenant's events-per-second window has counted."""
        return (
            self.limiter.used(quota_per_seconds(limit, 1), EVENTS_LIMIT_KEY, self.scope.tenant_id)
            if self.limiter
            else 0
        )

    # -- configuration ---------------------------------------------------------------------------------------
    def create(self, *, data: StreamCreate, created_by: str | None) -> StreamPublic:
        stream = Stream(
            id=new_id("str"),
            tenant_id=self.scope.tenant_id,
            name=data.name,
            description=data.description,
            warmup=data.warmup,
            drift_delta=data.drift_delta,
            created_by=created_by,
            state_version=0,
            events_seen=0,
            anomaly_count=0,
            drift_count=0,
            snapshot_version=0,
            snapshot_events=0,
        )
        # The model first (a trained detector's is read from the blob store and verified), then the tenant's row
        # locked for the quota check: on SQLite that lock is the database's one write lock, held until the commit.
        model = self._configure(stream, data)
        policy = policy_of(self.session, self.scope, self.app.settings, lock=True)
        if policy.allowed_algorithms is not None and stream.algorithm not in policy.allowed_algorithms:
            raise InvalidInput(
                f"Algorithm {stream.algorithm!r} is not allowed in this tenant.",
                errors=[{"loc": ["body", "algorithm"], "msg": "not among the tenant's allowed algorithms"}],
                allowed=policy.allowed_algorithms,
            )
        policy.check("streams", used=self.streams.count())
        now = utcnow()
        stream.snapshot_at = now
        self.streams.add(stream)
        # Version 0 is a snapshot too, so recovery is always "latest snapshot + replay".
        self.streams.add_snapshot(
            snapshot(
                stream.id,
                model,
                scope=self.scope,
                key=self.app.artifact_key,
                version=0,
                last_seq=None,
                events_seen=0,
            )
        )
        self.session.commit()
        self.runtime.keep(stream.id, HotState(version=0, model=model, head=StreamHead.of(stream)))
        return self._public(stream)

    def _configure(self, stream: Stream, data: StreamCreate) -> ml.OnlineModel:
        """Fills the stream's model configuration from the request and builds its fresh model."""
        threshold = data.threshold.model_dump() if data.threshold is not None else None
        if data.detector_id is not None:
            detector, version, fitted = batch_model(
                session=self.session,
                scope=self.scope,
                app=self.app,
                detector_id=data.detector_id,
                version=data.model_version,
            )
            threshold = threshold or {"kind": "model"}
            stream.algorithm, stream.parameters, stream.features = (
                detector.algorithm,
                dict(version.parameters),
                list(fitted.features),
            )
            stream.detector_id, stream.model_version, stream.scaling = detector.id, version.version, "none"
            stream.threshold = threshold
            return ml.OnlineModel.for_batch_model(
                fitted, threshold=_spec(threshold), warmup=stream.warmup, drift_delta=stream.drift_delta
            )
        algorithm = data.algorithm or DEFAULT_ALGORITHM
        if not ml.is_online(algorithm):
            hint = " (a batch algorithm: train a detector and give its detector_id)" if algorithm in ml.CATALOG else ""
            raise InvalidInput(
                f"A stream needs an online algorithm; {algorithm!r} is not one{hint}.",
                errors=[{"loc": ["body", "algorithm"], "msg": "not an online algorithm", "type": "not_online"}],
            )
        threshold = threshold or {"kind": "quantile", "q": 0.99, "protect": True}
        if threshold["kind"] == "model":
            raise InvalidInput(
                "A 'model' threshold is for streams of a trained detector; use 'quantile' or 'fixed'.",
                errors=[{"loc": ["body", "threshold", "kind"], "msg": "needs detector_id", "type": "model_threshold"}],
            )
        assert data.features is not None  # the schema requires them without a detector
        try:
            parameters = ml.validate_online_parameters(algorithm, data.parameters)
            model = ml.OnlineModel.create(
                algorithm=algorithm,
                parameters=parameters,
                features=data.features,
                threshold=_spec(threshold),
                warmup=data.warmup,
                scaling=data.scaling,
                drift_delta=data.drift_delta,
            )
        except ml.MLError as exc:
            raise ml_problem(exc) from exc
        stream.algorithm, stream.parameters, stream.features = algorithm, parameters, list(data.features)
        stream.scaling, stream.threshold = data.scaling, threshold
        return model

    def get(self, *, stream_id: str) -> StreamPublic:
        return self._public(self._get(stream_id))

    def list(self, *, limit: int, cursor: str | None) -> tuple[builtins.list[StreamPublic], str | None]:
        rows = self.streams.list(limit=limit, after_id=decode_cursor(cursor))
        items = builtins.list(rows[:limit])
        next_cursor = encode_cursor(items[-1].id) if len(rows) > limit and items else None
        return [self._public(s, details=False) for s in items], next_cursor

    def update(self, *, stream_id: str, data: StreamUpdate) -> StreamPublic:
        stream = self._get(stream_id)
        if "name" in data.model_fields_set:
            if data.name is None:
                raise InvalidInput("name cannot be null.", errors=[{"loc": ["body", "name"], "msg": "null"}])
            stream.name = data.name
        if "description" in data.model_fields_set:
            stream.description = data.description
        stream.updated_at = utcnow()
        self.session.commit()
        return self._public(stream)

    def delete(self, *, stream_id: str) -> None:
        stream = self._get(stream_id)
        with self.runtime.lock(stream_id):
            self.streams.delete(stream)
            self.session.commit()
            self.runtime.forget(stream_id)

    # -- events ----------------------------------------------------------------------------------------------
    def last_seq(self, *, stream_id: str) -> int | None:
        """Where a client resumes: every event up to here is acknowledged."""
        return self._get(stream_id).last_seq

    def ingest(self, *, stream_id: str, events: Sequence[Event]) -> Batch:
        """Scores, then learns, a batch exactly once, in seq order, and answers once it is durable (`ingest.py`)."""
        ingestion = Ingestion(
            session=self.session, scope=self.scope, app=self.app, runtime=self.runtime, limiter=self.limiter
        )
        return ingestion.run(stream_id=stream_id, events=events)

    def ingest_many(self, *, stream_id: str, batches: Sequence[Sequence[Event]]) -> builtins.list[Batch | VigilError]:
        """Consecutive batches in one transaction, each answered on its own (`Ingestion.run_many`)."""
        ingestion = Ingestion(
            session=self.session, scope=self.scope, app=self.app, runtime=self.runtime, limiter=self.limiter
        )
        return ingestion.run_many(stream_id=stream_id, batches=batches)

    # -- reading ---------------------------------------------------------------------------------------------
    def anomalies(
        self, *, stream_id: str, limit: int, cursor: str | None
    ) -> tuple[builtins.list[AnomalyPublic], str | None]:
        self._get(stream_id)
        rows = self.streams.anomalies(stream_id, limit=limit, before_seq=_seq_cursor(cursor))
        items = [AnomalyPublic.model_validate(a) for a in rows[:limit]]
        return items, encode_cursor(str(items[-1].seq)) if len(rows) > limit and items else None

    def drifts(
        self, *, stream_id: str, limit: int, cursor: str | None
    ) -> tuple[builtins.list[DriftPublic], str | None]:
        self._get(stream_id)
        rows = self.streams.drifts(stream_id, limit=limit, before_seq=_seq_cursor(cursor))
        items = [DriftPublic.model_validate(d) for d in rows[:limit]]
        return items, encode_cursor(str(items[-1].seq)) if len(rows) > limit and items else None

    def metrics(self, *, stream_id: str) -> StreamMetrics:
        stream = self._get(stream_id)
        recent, recent_anomalies = self.streams.events_since(stream_id, utcnow() - timedelta(seconds=METRICS_WINDOW_S))
        scored = max(0, stream.events_seen - stream.warmup)
        return StreamMetrics(
            stream_id=stream.id,
            events_seen=stream.events_seen,
            last_seq=stream.last_seq,
            last_event_at=stream.last_event_at,
            events_per_second=recent / METRICS_WINDOW_S,
            window_s=METRICS_WINDOW_S,
            anomalies=stream.anomaly_count,
            anomaly_rate=stream.anomaly_count / scored if scored else 0.0,
            recent_anomaly_rate=recent_anomalies / recent if recent else 0.0,
            drift_events=stream.drift_count,
            current_threshold=stream.current_threshold,
            snapshot_version=stream.snapshot_version,
            state_version=stream.state_version,
        )

    # -- helpers ---------------------------------------------------------------------------------------------
    def _get(self, stream_id: str) -> Stream:
        stream = self.streams.get(stream_id)
        if stream is None:
            raise NotFound("stream", stream_id)
        return stream

    def _public(self, stream: Stream, *, details: bool = True) -> StreamPublic:
        snapshot = self.streams.snapshot_info(stream.id, stream.snapshot_version) if details else None
        drifts = self.streams.drifts(stream.id, limit=LATEST_DRIFTS, before_seq=None)[:LATEST_DRIFTS] if details else []
        return StreamPublic(
            id=stream.id,
            name=stream.name,
            description=stream.description,
            algorithm=stream.algorithm,
            parameters=stream.parameters,
            features=stream.features,
            scaling=stream.scaling,
            threshold=stream.threshold,
            warmup=stream.warmup,
            drift_delta=stream.drift_delta,
            detector_id=stream.detector_id,
            model_version=stream.model_version,
            events_seen=stream.events_seen,
            last_seq=stream.last_seq,
            last_event_at=stream.last_event_at,
            anomaly_count=stream.anomaly_count,
            drift_count=stream.drift_count,
            current_threshold=stream.current_threshold,
            last_snapshot=SnapshotPublic.model_validate(snapshot, from_attributes=True) if snapshot else None,
            drift_events=[DriftPublic.model_validate(d) for d in drifts],
            created_at=stream.created_at,
            updated_at=stream.updated_at,
        )


def _spec(threshold: Mapping[str, Any]) -> ml.ThresholdSpec:
    return ml.ThresholdSpec(
        kind=threshold["kind"],
        q=float(threshold.get("q", 0.99)),
        value=threshold.get("value"),
        protect=bool(threshold.get("protect", True)),
    )


def _seq_cursor(cursor: str | None) -> int | None:
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise InvalidInput(
            "The cursor is not one this API issued.", errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}]
        ) from exc
