"""What the SDK returns: typed results (pydantic), one per response schema of the API's OpenAPI document.

The SDK may not import the server's own schemas (an import contract keeps it free of the server), so these are
its own — and `tests/client/test_models.py` checks each against `docs/openapi.json` (same members, compatible
types, nothing required that the server may leave out), so a change on either side that makes them drift fails.

Each model reads like the dict it replaces, so code written against the SDK's earlier plain-JSON answers keeps
working: ``job["status"]``, ``job.get("result")``, ``"stage" in job``; ``to_dict()`` gives the JSON back. Members
the server adds later are kept too (``extra="allow"``), reachable the same way, so an older SDK does not break on
a newer server.

>>> job = Job.model_validate({"id": "job_1", "kind": "train", "status": "running", "progress": 40.0,
...     "subject_id": None, "result": None, "error": None, "attempts": 1, "created_at": "2026-01-01T00:00:00Z",
...     "started_at": None, "finished_at": None, "eta_s": 12.5})
>>> job.status, job["progress"], job.get("stage"), job.done
('running', 40.0, None, False)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from vigil.client.types import FINAL_JOB_STATES


class ApiModel(BaseModel):
    """A response object: typed attributes, plus the read access of the JSON object it was."""

    # Members the server adds later are kept, not refused; `model_version` is a member name, not pydantic's.
    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())
    # The OpenAPI component this model mirrors (checked by the drift test).
    openapi_name: ClassVar[str] = ""

    def __getitem__(self, key: str) -> Any:
        fields = type(self).model_fields
        for name, field in fields.items():
            if key == (field.alias or name):
                return getattr(self, name)
        extra = self.model_extra or {}
        if key in extra:
            return extra[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.keys()

    def keys(self) -> list[str]:
        """The JSON member names, as the server sent them."""
        named = [field.alias or name for name, field in type(self).model_fields.items()]
        return named + list(self.model_extra or {})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (dates as ISO strings), as the API answered it."""
        return self.model_dump(mode="json", by_alias=True)


M = TypeVar("M", bound=ApiModel)


class Page(ApiModel, Generic[M]):
    """One page of a list: `items`, and `next_cursor` for the next (None on the last)."""

    items: list[M]
    next_cursor: str | None = None


# -- identity ---------------------------------------------------------------------------------------------------------
class Token(ApiModel):
    openapi_name = "TokenPublic"
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


class User(ApiModel):
    openapi_name = "UserPublic"
    id: str
    email: str
    role: str
    tenant_id: str
    is_active: bool
    created_at: datetime


class TenantRef(ApiModel):
    openapi_name = "TenantRef"
    id: str
    name: str


class ApiKeyRef(ApiModel):
    openapi_name = "ApiKeyRef"
    id: str
    name: str
    prefix: str


class Me(ApiModel):
    openapi_name = "MePublic"
    user: User
    tenant: TenantRef
    role: str
    permissions: list[str]
    api_key: ApiKeyRef | None = None


class Tenant(ApiModel):
    openapi_name = "TenantPublic"
    id: str
    name: str
    status: str
    quotas: dict[str, int]
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ApiKey(ApiModel):
    openapi_name = "ApiKeyPublic"
    id: str
    name: str
    prefix: str
    scopes: list[str]
    rate_limit: dict[str, Any] | None
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKey):
    """A new key: `key` is its secret, shown in this answer only."""

    openapi_name = "ApiKeyCreated"
    key: str


# -- datasets and their reports ---------------------------------------------------------------------------------------
class Column(ApiModel):
    openapi_name = "ColumnPublic"
    name: str
    kind: Literal["numeric", "categorical", "boolean", "datetime"]
    dtype: str
    nullable: bool


class Dataset(ApiModel):
    openapi_name = "DatasetPublic"
    id: str
    name: str
    description: str | None
    rows: int
    columns: int
    # `schema` is a pydantic method name: the attribute is `schema_`, the JSON member (and `dataset["schema"]`)
    # stays `schema`.
    schema_: list[Column] = Field(alias="schema")
    size_bytes: int
    source_format: str
    origin: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.schema_]


class Rows(ApiModel):
    openapi_name = "RowsPublic"
    columns: list[str]
    rows: list[dict[str, Any]]
    offset: int
    limit: int
    total: int


class Report(ApiModel):
    """A profile, quality or analysis report; `body` is the report itself (its shape depends on `kind`)."""

    openapi_name = "ReportPublic"
    id: str
    dataset_id: str
    kind: Literal["profile", "quality", "analysis"]
    version: int
    status: Literal["pending", "ready", "failed"]
    parameters: dict[str, Any]
    body: dict[str, Any] | None
    error: dict[str, Any] | None
    job_id: str | None
    dataset_rows: int
    created_at: datetime
    finished_at: datetime | None


# -- detectors, versions, detection, feedback --------------------------------------------------------------------------
class Algorithm(ApiModel):
    openapi_name = "AlgorithmPublic"
    name: str
    family: str
    title: str
    description: str
    params: list[dict[str, Any]]
    explanation_method: str
    learns_from_labels: bool = False


class DetectorInfo(ApiModel):
    """A detector as the API describes it (`vigil.client.Detector` is the scikit-learn-style estimator)."""

    openapi_name = "DetectorPublic"
    id: str
    name: str
    description: str | None
    algorithm: str
    parameters: dict[str, Any]
    contamination: float
    features: list[str] | None
    preprocessing: dict[str, Any]
    status: Literal["created", "training", "trained", "failed"]
    status_reason: str | None
    current_version: int | None
    previous_versions: list[int] = Field(default_factory=list)
    threshold: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime


class ModelVersion(ApiModel):
    openapi_name = "ModelVersionPublic"
    id: str
    version: int
    dataset_id: str
    job_id: str | None
    algorithm: str
    parameters: dict[str, Any]
    features: list[str]
    threshold: float
    training_rows: int
    score_summary: dict[str, Any]
    created_at: datetime
    active: bool = False
    contamination: float | None = None
    dataset: dict[str, Any] | None = None
    explanation_method: str | None = None
    labels_used: int = 0
    metrics: dict[str, Any] | None = None
    origin: dict[str, Any] | None = None
    preprocessing: dict[str, Any] | None = None
    threshold_rule: dict[str, Any] | None = None
    training_seconds: float | None = None


class Contribution(ApiModel):
    openapi_name = "Contribution"
    feature: str
    contribution: float


class ScoredRow(ApiModel):
    openapi_name = "ScoredRow"
    index: int
    score: float
    is_anomaly: bool
    percentile: float | None = None
    imputed: bool = False
    explanation: list[Contribution] | None = None


class DetectionResult(ApiModel):
    openapi_name = "DetectionResult"
    detector_id: str
    model_version: int
    threshold: float
    total: int
    anomalies: int
    anomaly_rate: float
    results: list[ScoredRow]
    explanation_method: str | None = None
    imputed_rows: int = 0


class VersionSide(ApiModel):
    openapi_name = "VersionSide"
    version: int
    threshold: float
    flagged: int
    metrics: dict[str, Any] | None


class VersionComparison(ApiModel):
    openapi_name = "VersionComparison"
    detector_id: str
    dataset_id: str
    rows: int
    a: VersionSide
    b: VersionSide
    spearman: float | None
    flagged_both: int
    flagged_jaccard: float
    metric_deltas: dict[str, float | None] | None


class FeedbackSummary(ApiModel):
    openapi_name = "FeedbackSummary"
    detector_id: str
    dataset_id: str
    added: int
    changed: int
    anomalies: int
    normals: int


class FeedbackLabel(ApiModel):
    openapi_name = "FeedbackLabelPublic"
    id: str
    dataset_id: str
    index: int
    label: Literal["anomaly", "normal"]
    created_at: datetime


# -- jobs -------------------------------------------------------------------------------------------------------------
class Job(ApiModel):
    openapi_name = "JobPublic"
    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float
    stage: str | None = None
    subject_id: str | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    eta_s: float | None = None

    @property
    def done(self) -> bool:
        """Whether the job has ended (succeeded, failed or cancelled)."""
        return self.status in FINAL_JOB_STATES


MODELS: tuple[type[ApiModel], ...] = (
    Token,
    User,
    TenantRef,
    ApiKeyRef,
    Me,
    Tenant,
    ApiKey,
    ApiKeyCreated,
    Column,
    Dataset,
    Rows,
    Report,
    Algorithm,
    DetectorInfo,
    ModelVersion,
    Contribution,
    ScoredRow,
    DetectionResult,
    VersionSide,
    VersionComparison,
    FeedbackSummary,
    FeedbackLabel,
    Job,
)
"""Every model that mirrors an OpenAPI component (the drift test walks these)."""
