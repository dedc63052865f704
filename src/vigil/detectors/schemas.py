"""Detector request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from vigil.core.bounds import MAX_ROW, MAX_VERSION
from vigil.core.names import Name

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
DetectorStatus = Literal["created", "training", "trained", "failed"]
MAX_INLINE_RECORDS = 10_000


def _unique_names(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("feature names must be unique")
    return value


Features = Annotated[list[ColumnName], Field(min_length=1, max_length=2048), AfterValidator(_unique_names)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PreprocessingSpec(Strict):
    scaling: Literal["none", "standard", "minmax", "robust"] = "none"
    categorical: Literal["onehot", "ordinal", "error"] = "error"
    missing: Literal["mean", "median", "zero", "error"] = "median"


DatasetId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class ContaminationThreshold(Strict):
    """Flag the share `contamination` of the training rows (the default)."""

    method: Literal["contamination"] = "contamination"


class ScoreThreshold(Strict):
    """Flag every row scoring above a fixed value."""

    method: Literal["score"]
    value: Annotated[float, Field(allow_inf_nan=False)]


class FprThreshold(Strict):
    """Flag a target share of normal rows: the threshold is the (1 − target_fpr) quantile of the scores of a
    reference dataset's rows labelled normal (all its rows when none are labelled), set at each training."""

    method: Literal["fpr"]
    target_fpr: Annotated[float, Field(gt=0, lt=1)]
    reference_dataset_id: DatasetId


ThresholdRule = Annotated[ContaminationThreshold | ScoreThreshold | FprThreshold, Field(discriminator="method")]


class DetectorCreate(Strict):
    name: Name
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    algorithm: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        default="auto", description="A catalog algorithm; `auto` (an ensemble that learns from feedback) by default."
    )
    parameters: dict[str, Any] = Field(default_factory=dict, max_length=100)
    contamination: Annotated[float, Field(gt=0, le=0.5)] | None = Field(
        default=None, description="Expected share of anomalies; the tenant's default_contamination when omitted."
    )
    features: Features | None = None
    preprocessing: PreprocessingSpec = Field(default_factory=PreprocessingSpec)
    threshold: ThresholdRule | None = Field(
        default=None, description="How the threshold is set; contamination if null."
    )


class DetectorUpdate(Strict):
    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    parameters: dict[str, Any] | None = Field(default=None, max_length=100)
    contamination: Annotated[float, Field(gt=0, le=0.5)] | None = None
    features: Features | None = None
    preprocessing: PreprocessingSpec | None = None
    threshold: ThresholdRule | None = None


class DetectorPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str | None
    algorithm: str
    parameters: dict[str, Any]
    contamination: float
    features: list[str] | None
    preprocessing: PreprocessingSpec
    status: DetectorStatus
    status_reason: str | None
    current_version: int | None
    threshold: dict[str, Any] | None = Field(default=None, validation_alias="threshold_rule")
    previous_versions: list[int] = Field(default_factory=list, description="Active before, most recent last.")
    created_at: datetime
    updated_at: datetime

    @field_validator("previous_versions", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class ModelVersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    version: int
    active: bool = False
    dataset_id: str
    dataset: dict[str, Any] | None = Field(default=None, description="The training dataset as it was: id, name, rows.")
    job_id: str | None
    algorithm: str
    parameters: dict[str, Any]
    preprocessing: dict[str, Any] | None = None
    contamination: float | None = None
    features: list[str]
    threshold: float
    threshold_rule: dict[str, Any] | None = None
    training_rows: int
    training_seconds: float | None = None
    labels_used: int = 0
    score_summary: dict[str, Any]
    metrics: dict[str, Any] | None = Field(
        default=None, description="ROC-AUC, PR-AUC, precision at k on the held-out labelled rows (with labels)."
    )
    explanation_method: str | None = None
    origin: dict[str, Any] | None = Field(default=None, description="Where an imported version came from.")
    created_at: datetime


class TrainRequest(Strict):
    dataset_id: DatasetId
    promote: bool = Field(default=True, description="Make the new version the active one when it is ready.")


class ExplainOptions(Strict):
    top_k: Annotated[int, Field(ge=1, le=50)] = 3


class DetectRequest(Strict):
    """Either inline `records` (at most 10,000) or a stored `dataset_id` (scored as a job)."""

    records: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_INLINE_RECORDS)] | None = None
    dataset_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    version: Annotated[int, Field(ge=1, le=MAX_VERSION)] | None = None
    explain: ExplainOptions | None = Field(default=None, description="Also return each row's top features.")

    @model_validator(mode="after")
    def _one_source(self) -> DetectRequest:
        if (self.records is None) == (self.dataset_id is None):
            raise ValueError("give exactly one of 'records' or 'dataset_id'")
        return self


class Contribution(BaseModel):
    feature: str
    contribution: float


class ScoredRow(BaseModel):
    index: int
    score: float = Field(
        description="The algorithm's raw score: higher is more anomalous; its scale is the algorithm's."
    )
    is_anomaly: bool
    percentile: float | None = Field(
        default=None,
        description="0–1: the share of the training rows that scored lower (1: beyond every one of them) — the same "
        "scale whatever the algorithm.",
    )
    imputed: bool = Field(
        default=False, description="A feature value of this row was missing and filled in (as the preprocessing says)."
    )
    explanation: list[Contribution] | None = None


class DetectionResult(BaseModel):
    detector_id: str
    model_version: int
    threshold: float
    total: int
    anomalies: int
    anomaly_rate: float
    imputed_rows: int = Field(default=0, description="How many rows had a missing feature value filled in.")
    explanation_method: str | None = None
    results: list[ScoredRow]


class LabelItem(Strict):
    index: Annotated[int, Field(ge=0, le=MAX_ROW)]
    label: Literal["anomaly", "normal"]


class FeedbackCreate(Strict):
    """Labels for rows of a dataset: a list of `{index, label}`, or a `label_column` of the dataset whose values
    are anomaly/normal (also true/false or 1/0); its null cells are left unlabelled."""

    dataset_id: DatasetId
    labels: Annotated[list[LabelItem], Field(min_length=1, max_length=100_000)] | None = None
    label_column: ColumnName | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FeedbackCreate:
        if (self.labels is None) == (self.label_column is None):
            raise ValueError("give exactly one of 'labels' or 'label_column'")
        return self


class FeedbackSummary(BaseModel):
    detector_id: str
    dataset_id: str
    added: int
    changed: int
    anomalies: int = Field(description="Rows of this dataset now labelled anomaly.")
    normals: int = Field(description="Rows of this dataset now labelled normal.")


class FeedbackLabelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    dataset_id: str
    index: int = Field(validation_alias="row_index")
    label: Literal["anomaly", "normal"]
    created_at: datetime

    @field_validator("label", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        return {1: "anomaly", 0: "normal"}.get(value, value)


class FeedbackDeleted(BaseModel):
    deleted: int


class CompareRequest(Strict):
    a: Annotated[int, Field(ge=1, le=MAX_VERSION)]
    b: Annotated[int, Field(ge=1, le=MAX_VERSION)]
    dataset_id: DatasetId


class VersionSide(BaseModel):
    version: int
    threshold: float
    flagged: int
    metrics: dict[str, Any] | None


class VersionComparison(BaseModel):
    detector_id: str
    dataset_id: str
    rows: int
    a: VersionSide
    b: VersionSide
    spearman: float | None = Field(description="Rank correlation of the two versions' scores.")
    flagged_both: int
    flagged_jaccard: float = Field(description="Overlap of the flagged rows: |both| / |either|.")
    metric_deltas: dict[str, float | None] | None = Field(
        description="b minus a on the dataset's held-out labelled rows (null without labels)."
    )


class SigningKey(BaseModel):
    public_key: str = Field(description="Ed25519, URL-safe base64: add it to an importing tenant's trusted keys.")
    key_id: str


class AlgorithmParam(BaseModel):
    name: str
    type: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: list[Any] | None = None
    description: str = ""


class AlgorithmPublic(BaseModel):
    name: str
    family: str
    title: str
    description: str
    params: list[AlgorithmParam]
    explanation_method: str = Field(
        description="tail_probabilities, histogram_density, isolation_path or shapley_sampling (docs/architecture.md); "
        "none for the online detectors of streams"
    )
    learns_from_labels: bool = False


class AlgorithmList(BaseModel):
    items: list[AlgorithmPublic]
