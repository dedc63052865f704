"""Stream request and response models, and the WebSocket frames."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, model_validator
from typing_extensions import TypedDict

from vigil.core.bounds import MAX_VERSION
from vigil.core.names import Name

FeatureName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]*$")]
Seq = Annotated[int, Field(ge=0, le=2**63 - 1)]


def _unique(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("feature names must be unique")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuantileThreshold(Strict):
    """Flag an event whose score reaches the running `q` quantile of the stream's scores (River's QuantileFilter)."""

    kind: Literal["quantile"] = "quantile"
    q: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.99
    protect: bool = Field(default=True, description="Flagged events are not learnt (River's default).")


class FixedThreshold(Strict):
    """Flag an event whose score reaches `value` (River's ThresholdFilter)."""

    kind: Literal["fixed"]
    value: Annotated[float, Field(allow_inf_nan=False)]
    protect: bool = True


class ModelThreshold(Strict):
    """Flag an event whose score is above the batch model's own threshold (streams of a trained detector)."""

    kind: Literal["model"]


Threshold = Annotated[QuantileThreshold | FixedThreshold | ModelThreshold, Field(discriminator="kind")]


class StreamCreate(Strict):
    """An online `algorithm` of the catalog (with `parameters` and `features`), or a trained batch detector
    (`detector_id`, optionally a `model_version`) whose model scores the stream without learning."""

    name: Name
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    algorithm: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="An online algorithm (GET /algorithms, family 'online'); 'hst' by default."
    )
    parameters: dict[str, Any] = Field(default_factory=dict, max_length=100)
    features: Annotated[list[FeatureName], Field(min_length=1, max_length=512), AfterValidator(_unique)] | None = None
    scaling: Literal["auto", "none", "minmax", "standard"] = Field(
        default="auto", description="Online feature scaling before the detector ('auto': the algorithm's own)."
    )
    threshold: Threshold | None = Field(default=None, description="Quantile 0.99 by default ('model' for detectors).")
    warmup: Annotated[int, Field(ge=0, le=10_000_000)] = Field(
        default=500,
        description="Events learnt but never flagged at the start; the quantile threshold learns from its second half.",
    )
    drift_delta: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        default=0.002, description="ADWIN's confidence over the score stream (smaller: fewer, later alarms); null: off."
    )
    detector_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    model_version: Annotated[int, Field(ge=1, le=MAX_VERSION)] | None = None

    @model_validator(mode="after")
    def _one_model(self) -> StreamCreate:
        if self.detector_id is not None and (self.algorithm is not None or self.features is not None):
            raise ValueError("give an online 'algorithm' and its 'features', or a trained 'detector_id', not both")
        if self.detector_id is None and self.features is None:
            raise ValueError("'features' are required for an online algorithm")
        return self


class StreamUpdate(Strict):
    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None


class SnapshotPublic(BaseModel):
    state_version: int
    last_seq: int | None
    events_seen: int
    created_at: datetime


class DriftPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    seq: int
    detector: str
    details: dict[str, Any]
    created_at: datetime


class StreamPublic(BaseModel):
    id: str
    name: str
    description: str | None
    algorithm: str
    parameters: dict[str, Any]
    features: list[str]
    scaling: str
    threshold: dict[str, Any]
    warmup: int
    drift_delta: float | None
    detector_id: str | None
    model_version: int | None
    events_seen: int
    last_seq: int | None
    last_event_at: datetime | None
    anomaly_count: int
    drift_count: int
    current_threshold: float | None
    last_snapshot: SnapshotPublic | None
    drift_events: list[DriftPublic] = Field(description="The latest drift events (all: GET …/drifts).")
    created_at: datetime
    updated_at: datetime


class Event(TypedDict):
    """One event: its `seq` and one number per feature of the stream. A TypedDict, not a model: a batch is parsed
    (strictly: no other members) without building an object per event."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    seq: Seq
    values: Annotated[dict[str, Any], Field(max_length=512)]


class EventsRequest(Strict):
    events: list[Event] = Field(min_length=1)


class EventResult(BaseModel):
    seq: int
    score: float | None
    is_anomaly: bool | None
    status: Literal["new", "duplicate", "late"] = Field(
        description="new: scored and learnt now; duplicate: seen before (its first answer, when still in the log); "
        "late: at or below last_seq but never seen — not learnt, so the stream's order holds."
    )


class EventsResponse(BaseModel):
    results: list[EventResult]
    last_seq: int | None = Field(description="Every event up to this seq is acknowledged (durable).")
    accepted: int
    duplicates: int
    threshold: float | None = Field(description="The score an event must reach now to be flagged.")


class AnomalyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    seq: int
    score: float
    threshold: float | None
    values: dict[str, Any]
    created_at: datetime


class StreamMetrics(BaseModel):
    stream_id: str
    events_seen: int
    last_seq: int | None
    last_event_at: datetime | None
    events_per_second: float = Field(description="Over the last `window_s` seconds.")
    window_s: int
    anomalies: int
    anomaly_rate: float = Field(description="Anomalies per event after warm-up, since the start.")
    recent_anomaly_rate: float = Field(description="Anomalies per event over the last `window_s` seconds.")
    drift_events: int
    current_threshold: float | None
    snapshot_version: int
    state_version: int


# -- WebSocket frames (JSON text) ---------------------------------------------------------------------------
class AuthFrame(Strict):
    type: Literal["auth"]
    token: Annotated[str, StringConstraints(max_length=4096)] | None = None
    api_key: Annotated[str, StringConstraints(max_length=4096)] | None = None


class EventsFrame(Strict):
    type: Literal["events"]
    events: list[Event] = Field(min_length=1)
    id: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, description="Echoed on the answer, to match answers to batches."
    )


class PingFrame(Strict):
    type: Literal["ping"]
    id: Annotated[str, StringConstraints(max_length=100)] | None = None


class SyncFrame(Strict):
    type: Literal["sync"]


InFrame = Annotated[AuthFrame | EventsFrame | PingFrame | SyncFrame, Field(discriminator="type")]
IN_FRAME: TypeAdapter[AuthFrame | EventsFrame | PingFrame | SyncFrame] = TypeAdapter(InFrame)


@dataclass(frozen=True)
class Batch:
    """What a batch did, ready for the wire: plain JSON-safe dicts (no model per event on the hot path); its shape is
    `EventsResponse`."""

    results: list[dict[str, Any]]
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
