"""Detector tables: a detector's configuration, and one model version per successful training."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.database import Base, utcnow


class Detector(Base):
    __tablename__ = "detectors"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    algorithm: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]]
    contamination: Mapped[float]
    features: Mapped[list[Any] | None]
    preprocessing: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="created")
    status_reason: Mapped[str | None] = mapped_column(Text)
    current_version: Mapped[int | None]
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("detector_id", "version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    detector_id: Mapped[str] = mapped_column(ForeignKey("detectors.id", ondelete="CASCADE"), index=True)
    version: Mapped[int]
    dataset_id: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[str | None] = mapped_column(String(32))
    artifact_key: Mapped[str] = mapped_column(String(300))
    algorithm: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]]
    features: Mapped[list[Any]]
    threshold: Mapped[float]
    training_rows: Mapped[int]
    score_summary: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
