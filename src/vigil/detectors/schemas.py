"""Detector request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
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


class DetectorCreate(Strict):
    name: Name
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    algorithm: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    parameters: dict[str, Any] = Field(default_factory=dict, max_length=100)
    contamination: Annotated[float, Field(gt=0, le=0.5)] | None = Field(
        default=None, description="Expected share of anomalies; the tenant's default_contamination when omitted."
    )
    features: Features | None = None
    preprocessing: PreprocessingSpec = Field(default_factory=PreprocessingSpec)


class DetectorUpdate(Strict):
    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    parameters: dict[str, Any] | None = Field(default=None, max_length=100)
    contamination: Annotated[float, Field(gt=0, le=0.5)] | None = None
    features: Features | None = None
    preprocessing: PreprocessingSpec | None = None


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
    created_at: datetime
    updated_at: datetime


class ModelVersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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


class TrainRequest(Strict):
    dataset_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class DetectRequest(Strict):
    """Either inline `records` (at most 10,000) or a stored `dataset_id` (scored as a job)."""

    records: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_INLINE_RECORDS)] | None = None
    dataset_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    version: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DetectRequest:
        if (self.records is None) == (self.dataset_id is None):
            raise ValueError("give exactly one of 'records' or 'dataset_id'")
        return self


class ScoredRow(BaseModel):
    index: int
    score: float
    is_anomaly: bool


class DetectionResult(BaseModel):
    detector_id: str
    model_version: int
    threshold: float
    total: int
    anomalies: int
    anomaly_rate: float
    results: list[ScoredRow]


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


class AlgorithmList(BaseModel):
    items: list[AlgorithmPublic]
