"""Detector tables: a detector's configuration, one model version per training (or import), feedback labels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, SmallInteger, String, Text, UniqueConstraint
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
    # How the threshold is set at training: null = from contamination; {"method": "score", "value": x};
    # {"method": "fpr", "target_fpr": r, "reference_dataset_id": id}.
    threshold_rule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Versions that were active before the current one, most recent last: what rollback returns to.
    previous_versions: Mapped[list[Any] | None] = mapped_column(JSON)
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
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")  # the artifact's
    algorithm: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]]
    features: Mapped[list[Any]]
    threshold: Mapped[float]
    training_rows: Mapped[int]
    score_summary: Mapped[dict[str, Any]]
    dataset: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    preprocessing: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    contamination: Mapped[float | None]
    threshold_rule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    training_seconds: Mapped[float | None]
    labels_used: Mapped[int] = mapped_column(default=0, server_default="0")
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    origin: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeedbackLabel(Base):
    """An analyst's verdict on one row of a dataset, for one detector: 1 = anomaly, 0 = normal."""

    __tablename__ = "feedback_labels"
    __table_args__ = (
        UniqueConstraint("detector_id", "dataset_id", "row_index"),
        CheckConstraint("label IN (0, 1)", name="ck_feedback_labels_label"),
        CheckConstraint("row_index >= 0", name="ck_feedback_labels_row_index"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    detector_id: Mapped[str] = mapped_column(ForeignKey("detectors.id", ondelete="CASCADE"))
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    row_index: Mapped[int] = mapped_column(BigInteger)
    label: Mapped[int] = mapped_column(SmallInteger)
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
