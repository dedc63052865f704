"""Detector, model-version and feedback-label queries, always within one tenant."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, and_, delete, func, insert, select
from sqlalchemy.orm import Session

from vigil.core.database import TenantScope, bind_tenant
from vigil.core.pagination import PageQuery
from vigil.detectors.models import Detector, FeedbackLabel, ModelVersion

_IN_CHUNK = 500
_PAGE = PageQuery(cast(Table, Detector.__table__))  # read as rows: core/pagination.py says why


class DetectorRepository:
    def __init__(self, *, session: Session, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope
        bind_tenant(session, scope)

    def get(self, detector_id: str) -> Detector | None:
        return self.session.scalar(
            select(Detector).where(Detector.id == detector_id, Detector.tenant_id == self.scope.tenant_id)
        )

    def list(self, *, limit: int, after_id: str | None) -> Sequence[Row[Any]]:
        """A page of detectors as rows with the entity's attribute names (read-only: nothing to change or flush)."""
        return _PAGE.rows(self.session, tenant_id=self.scope.tenant_id, limit=limit, after_id=after_id)

    def count(self) -> int:
        return int(self.session.scalar(select(func.count()).where(Detector.tenant_id == self.scope.tenant_id)) or 0)

    def add(self, detector: Detector) -> Detector:
        if detector.tenant_id != self.scope.tenant_id:
            raise ValueError("a detector belongs to the scope's tenant")
        self.session.add(detector)
        self.session.flush()
        return detector

    def delete(self, detector: Detector) -> None:
        self.session.delete(detector)

    def version(self, detector_id: str, version: int) -> ModelVersion | None:
        return self.session.scalar(
            select(ModelVersion).where(
                ModelVersion.tenant_id == self.scope.tenant_id,
                ModelVersion.detector_id == detector_id,
                ModelVersion.version == version,
            )
        )

    def with_version(self, detector_id: str, version: int | None) -> tuple[Detector, ModelVersion | None] | None:
        """A detector and one of its model versions — the current one when `version` is None — in one query
        (detection asks this on every request); None when there is no such detector, no version when that is
        missing."""
        wanted = Detector.current_version if version is None else version
        row = self.session.execute(
            select(Detector, ModelVersion)
            .outerjoin(
                ModelVersion,
                and_(
                    ModelVersion.tenant_id == Detector.tenant_id,
                    ModelVersion.detector_id == Detector.id,
                    ModelVersion.version == wanted,
                ),
            )
            .where(Detector.id == detector_id, Detector.tenant_id == self.scope.tenant_id)
        ).first()
        return (row[0], row[1]) if row is not None else None

    def versions(self, detector_id: str, *, limit: int, after_id: str | None) -> Sequence[ModelVersion]:
        query = select(ModelVersion).where(
            ModelVersion.tenant_id == self.scope.tenant_id, ModelVersion.detector_id == detector_id
        )
        if after_id is not None:
            query = query.where(ModelVersion.id < after_id)
        return self.session.scalars(query.order_by(ModelVersion.id.desc()).limit(limit + 1)).all()

    def stored_bytes(self) -> int:
        """What the tenant's model artifacts take of its storage."""
        total = self.session.scalar(
            select(func.coalesce(func.sum(ModelVersion.size_bytes), 0)).where(
                ModelVersion.tenant_id == self.scope.tenant_id
            )
        )
        return int(total or 0)

    def referenced_artifacts(self, keys: builtins.list[str]) -> builtins.list[str]:
        """Which of `keys` the tenant's model versions are stored in."""
        return list(
            self.session.scalars(
                select(ModelVersion.artifact_key).where(
                    ModelVersion.tenant_id == self.scope.tenant_id, ModelVersion.artifact_key.in_(keys)
                )
            )
        )

    def artifact_keys(self, *, after: str | None, limit: int) -> Sequence[str]:
        query = select(ModelVersion.artifact_key).where(ModelVersion.tenant_id == self.scope.tenant_id)
        if after is not None:
            query = query.where(ModelVersion.artifact_key > after)
        return self.session.scalars(query.order_by(ModelVersion.artifact_key).limit(limit)).all()

    def all_artifact_keys(self, detector_id: str) -> builtins.list[str]:
        return list(
            self.session.scalars(
                select(ModelVersion.artifact_key).where(
                    ModelVersion.tenant_id == self.scope.tenant_id, ModelVersion.detector_id == detector_id
                )
            )
        )

    def next_version(self, detector_id: str) -> int:
        current = self.session.scalar(
            select(func.max(ModelVersion.version)).where(
                ModelVersion.tenant_id == self.scope.tenant_id, ModelVersion.detector_id == detector_id
            )
        )
        return int(current or 0) + 1

    def add_version(self, version: ModelVersion) -> ModelVersion:
        if version.tenant_id != self.scope.tenant_id:
            raise ValueError("a model version belongs to the scope's tenant")
        self.session.add(version)
        self.session.flush()
        return version

    def delete_version(self, version: ModelVersion) -> None:
        self.session.delete(version)
        self.session.flush()

    def version_numbers(self, detector_id: str) -> builtins.list[int]:
        return list(
            self.session.scalars(
                select(ModelVersion.version).where(
                    ModelVersion.tenant_id == self.scope.tenant_id, ModelVersion.detector_id == detector_id
                )
            )
        )


class FeedbackRepository:
    """Analysts' labels of dataset rows for a detector."""

    def __init__(self, *, session: Session, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope
        bind_tenant(session, scope)

    def _mine(self, detector_id: str) -> Any:
        return (FeedbackLabel.tenant_id == self.scope.tenant_id) & (FeedbackLabel.detector_id == detector_id)

    def labels(self, detector_id: str, dataset_id: str) -> builtins.list[tuple[int, int]]:
        """Every (row index, label) of the dataset for the detector, in row order."""
        rows = self.session.execute(
            select(FeedbackLabel.row_index, FeedbackLabel.label)
            .where(self._mine(detector_id), FeedbackLabel.dataset_id == dataset_id)
            .order_by(FeedbackLabel.row_index)
        )
        return [(int(r), int(v)) for r, v in rows]

    def existing(self, detector_id: str, dataset_id: str, indices: builtins.list[int]) -> dict[int, FeedbackLabel]:
        found: dict[int, FeedbackLabel] = {}
        for start in range(0, len(indices), _IN_CHUNK):
            chunk = indices[start : start + _IN_CHUNK]
            query = select(FeedbackLabel).where(
                self._mine(detector_id), FeedbackLabel.dataset_id == dataset_id, FeedbackLabel.row_index.in_(chunk)
            )
            found.update({label.row_index: label for label in self.session.scalars(query)})
        return found

    def insert_many(self, rows: builtins.list[dict[str, Any]]) -> None:
        if any(row["tenant_id"] != self.scope.tenant_id for row in rows):
            raise ValueError("a feedback label belongs to the scope's tenant")
        if rows:
            self.session.execute(insert(FeedbackLabel), rows)

    def list(
        self, detector_id: str, *, dataset_id: str | None, limit: int, after_id: str | None
    ) -> Sequence[FeedbackLabel]:
        query = select(FeedbackLabel).where(self._mine(detector_id))
        if dataset_id is not None:
            query = query.where(FeedbackLabel.dataset_id == dataset_id)
        if after_id is not None:
            query = query.where(FeedbackLabel.id < after_id)
        return self.session.scalars(query.order_by(FeedbackLabel.id.desc()).limit(limit + 1)).all()

    def get(self, detector_id: str, label_id: str) -> FeedbackLabel | None:
        return self.session.scalar(select(FeedbackLabel).where(self._mine(detector_id), FeedbackLabel.id == label_id))

    def delete(self, label: FeedbackLabel) -> None:
        self.session.delete(label)

    def delete_for_dataset(self, detector_id: str, dataset_id: str) -> int:
        result = self.session.execute(
            delete(FeedbackLabel).where(self._mine(detector_id), FeedbackLabel.dataset_id == dataset_id)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def counts(self, detector_id: str, dataset_id: str) -> dict[int, int]:
        rows = self.session.execute(
            select(FeedbackLabel.label, func.count())
            .where(self._mine(detector_id), FeedbackLabel.dataset_id == dataset_id)
            .group_by(FeedbackLabel.label)
        )
        return {int(label): int(n) for label, n in rows}

    def count_tenant(self) -> int:
        return int(
            self.session.scalar(select(func.count()).where(FeedbackLabel.tenant_id == self.scope.tenant_id)) or 0
        )
