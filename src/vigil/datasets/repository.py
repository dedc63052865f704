"""Dataset and dataset-report queries, always within one tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Select, Table, func, select
from sqlalchemy.orm import Session

from vigil.core.database import TenantScope, bind_tenant
from vigil.core.pagination import PageQuery
from vigil.datasets.models import Dataset, DatasetReport

_PAGE = PageQuery(cast(Table, Dataset.__table__))  # read as rows: core/pagination.py says why


class DatasetRepository:
    def __init__(self, *, session: Session, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope
        bind_tenant(session, scope)

    def get(self, dataset_id: str) -> Dataset | None:
        return self.session.scalar(
            select(Dataset).where(Dataset.id == dataset_id, Dataset.tenant_id == self.scope.tenant_id)
        )

    def list(self, *, limit: int, after_id: str | None) -> Sequence[Row[Any]]:
        """A page of datasets as rows with the entity's attribute names (read-only: nothing to change or flush)."""
        return _PAGE.rows(self.session, tenant_id=self.scope.tenant_id, limit=limit, after_id=after_id)

    def add(self, dataset: Dataset) -> Dataset:
        if dataset.tenant_id != self.scope.tenant_id:
            raise ValueError("a dataset belongs to the scope's tenant")
        self.session.add(dataset)
        self.session.flush()
        return dataset

    def delete(self, dataset: Dataset) -> None:
        self.session.delete(dataset)

    def usage(self) -> tuple[int, int]:
        """(datasets, stored bytes) of the tenant."""
        row = self.session.execute(
            select(func.count(), func.coalesce(func.sum(Dataset.size_bytes), 0)).where(
                Dataset.tenant_id == self.scope.tenant_id
            )
        ).one()
        return int(row[0]), int(row[1])

    def referenced_blobs(self, keys: Sequence[str]) -> Sequence[str]:
        """Which of `keys` the tenant's datasets are stored in."""
        return self.session.scalars(
            select(Dataset.blob_key).where(Dataset.tenant_id == self.scope.tenant_id, Dataset.blob_key.in_(keys))
        ).all()

    def blob_keys(self, *, after: str | None, limit: int) -> Sequence[str]:
        query = select(Dataset.blob_key).where(Dataset.tenant_id == self.scope.tenant_id)
        if after is not None:
            query = query.where(Dataset.blob_key > after)
        return self.session.scalars(query.order_by(Dataset.blob_key).limit(limit)).all()

    def largest_rows(self) -> int:
        return int(
            self.session.scalar(select(func.max(Dataset.n_rows)).where(Dataset.tenant_id == self.scope.tenant_id)) or 0
        )

    def expired(self, *, before: datetime) -> Sequence[Dataset]:
        return self.session.scalars(
            select(Dataset).where(Dataset.tenant_id == self.scope.tenant_id, Dataset.created_at < before)
        ).all()

    def count(self) -> int:
        return int(self.session.scalar(select(func.count()).where(Dataset.tenant_id == self.scope.tenant_id)) or 0)


class ReportRepository:
    """Versioned data-science reports of the tenant's datasets."""

    def __init__(self, *, session: Session, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope
        bind_tenant(session, scope)

    def _scoped(self) -> Select[DatasetReport]:
        return select(DatasetReport).where(DatasetReport.tenant_id == self.scope.tenant_id)

    def get(self, report_id: str) -> DatasetReport | None:
        return self.session.scalar(self._scoped().where(DatasetReport.id == report_id))

    def version(self, *, dataset_id: str, kind: str, version: int) -> DatasetReport | None:
        return self.session.scalar(
            self._scoped().where(
                DatasetReport.dataset_id == dataset_id, DatasetReport.kind == kind, DatasetReport.version == version
            )
        )

    def latest(self, *, dataset_id: str, kind: str, status: str | None = "ready") -> DatasetReport | None:
        query = self._scoped().where(DatasetReport.dataset_id == dataset_id, DatasetReport.kind == kind)
        if status is not None:
            query = query.where(DatasetReport.status == status)
        return self.session.scalar(query.order_by(DatasetReport.version.desc()).limit(1))

    def versions(self, *, dataset_id: str, kind: str) -> Sequence[DatasetReport]:
        return self.session.scalars(
            self._scoped()
            .where(DatasetReport.dataset_id == dataset_id, DatasetReport.kind == kind)
            .order_by(DatasetReport.version.desc())
        ).all()

    def next_version(self, *, dataset_id: str, kind: str) -> int:
        current = self.session.scalar(
            select(func.max(DatasetReport.version)).where(
                DatasetReport.tenant_id == self.scope.tenant_id,
                DatasetReport.dataset_id == dataset_id,
                DatasetReport.kind == kind,
            )
        )
        return int(current or 0) + 1

    def add(self, report: DatasetReport) -> DatasetReport:
        if report.tenant_id != self.scope.tenant_id:
            raise ValueError("a report belongs to the scope's tenant")
        self.session.add(report)
        self.session.flush()
        return report
