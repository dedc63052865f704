"""Dataset request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

DatasetName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
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
