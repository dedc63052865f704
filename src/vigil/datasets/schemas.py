"""Dataset request and response models, and those of its data-science reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StringConstraints

from vigil.core.bounds import MAX_VERSION
from vigil.core.names import Name

DatasetName = Name
Description = Annotated[str, StringConstraints(max_length=10_000)]


class ColumnPublic(BaseModel):
    name: str
    kind: Literal["numeric", "categorical", "boolean", "datetime"]
    dtype: str
    nullable: bool


class DatasetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DatasetName | None = None
    description: Description | None = None


class DatasetPublic(BaseModel):
    id: str
    name: str
    description: str | None
    rows: int
    columns: int
    schema_: list[ColumnPublic] = Field(alias="schema", serialization_alias="schema")
    size_bytes: int
    source_format: str
    origin: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    model_config = ConfigDict(populate_by_name=True)


class RowsPublic(BaseModel):
    columns: list[str]
    rows: list[dict[str, Any]]
    offset: int
    limit: int
    total: int


# -- data-science reports ----------------------------------------------------------------------------------------
ReportKind = Literal["profile", "quality", "analysis"]
ReportStatus = Literal["pending", "ready", "failed"]
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Columns = Annotated[list[ColumnName], Field(min_length=1, max_length=4096)]
Family = Literal["normal", "lognormal", "exponential", "gamma", "weibull", "uniform"]
Scalar = StrictBool | StrictInt | StrictFloat | Annotated[str, StringConstraints(max_length=1024)]


class ProfileRequest(BaseModel):
    """What to profile; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    columns: Columns | None = Field(default=None, description="Profile only these columns (all by default).")
    top_values: int = Field(default=10, ge=1, le=100)
    bins: int = Field(default=20, ge=2, le=200, description="Histogram bins per numeric or datetime column.")
    correlation_sample_rows: int = Field(default=100_000, ge=100, le=5_000_000)
    correlation_max_columns: int = Field(default=50, ge=2, le=200)
    label_column: ColumnName | None = Field(
        default=None,
        description="The dataset's known answer (a label): profiled apart as its classes, left out of the features "
        "and their correlations, and the target of feature relevance.",
    )


class ColumnExpectation(BaseModel):
    """What one column should satisfy: inclusive `min`/`max` (numbers, or ISO-8601 text for datetime columns),
    the `allowed` values, `not_null`, `unique`, and the `kind` it should have."""

    model_config = ConfigDict(extra="forbid")

    min: StrictInt | StrictFloat | Annotated[str, StringConstraints(max_length=64)] | None = None
    max: StrictInt | StrictFloat | Annotated[str, StringConstraints(max_length=64)] | None = None
    allowed: Annotated[list[Scalar], Field(min_length=1, max_length=10_000)] | None = None
    not_null: bool = False
    unique: bool = False
    kind: Literal["numeric", "categorical", "boolean", "datetime"] | None = None


class QualityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    columns: Columns | None = Field(default=None, description="Assess only these columns (all by default).")
    expectations: Annotated[dict[ColumnName, ColumnExpectation], Field(max_length=4096)] = Field(
        default_factory=dict, description="Per column: {min, max, allowed, not_null, unique, kind}."
    )
    outlier_z: float = Field(
        default=3.5, gt=0, le=100, description="Robust (modified) z-score beyond which a value is an outlier."
    )
    samples: int = Field(default=10, ge=0, le=100, description="Sample row indexes kept per issue.")
    label_column: ColumnName | None = Field(
        default=None,
        description="The dataset's known answer (a label): checked for missing values and its expectations, not as "
        "a feature (no outliers, no categories to encode); its classes are summarised.",
    )


class AnalysisRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    columns: Columns | None = Field(default=None, description="Analyse only these columns (all by default).")
    families: Annotated[list[Family], Field(min_length=1)] | None = Field(
        default=None, description="Distribution families to fit (all by default)."
    )
    fit_sample: int = Field(default=5_000, ge=50, le=200_000, description="Values per column used for fitting.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    target: ColumnName | None = Field(
        default=None, description="A label (or score) column: feature relevance by mutual information with it."
    )
    label_column: ColumnName | None = Field(
        default=None,
        description="The dataset's known answer (a label): left out of the distribution fits and correlations, "
        "and the target of feature relevance unless `target` or `detector_id` says otherwise.",
    )
    detector_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None,
        description="A trained detector: feature relevance by permutation importance against its scores.",
    )
    detector_version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    relevance_rows: int = Field(default=5_000, ge=50, le=100_000)
    permutation_repeats: int = Field(default=3, ge=1, le=20)
    correlation_sample_rows: int = Field(default=100_000, ge=100, le=5_000_000)
    correlation_max_columns: int = Field(default=50, ge=2, le=200)


class ReportPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    dataset_id: str
    kind: ReportKind
    version: int
    status: ReportStatus
    parameters: dict[str, Any]
    body: dict[str, Any] | None
    error: dict[str, Any] | None
    job_id: str | None
    dataset_rows: int
    created_at: datetime
    finished_at: datetime | None


class ReportVersionPublic(BaseModel):
    """A report version without its body, for listings."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: ReportKind
    version: int
    status: ReportStatus
    job_id: str | None
    created_at: datetime
    finished_at: datetime | None


class ReportVersions(BaseModel):
    items: list[ReportVersionPublic]
