"""Dataset queries, always within one tenant."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.core.database import TenantScope
from vigil.datasets.models import Dataset


class DatasetRepository:
    def __init__(self, *, session: Session, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope

    def get(self, dataset_id: str) -> Dataset | None:
        return self.session.scalar(
            select(Dataset).where(Dataset.id == dataset_id, Dataset.tenant_id == self.scope.tenant_id)
        )

    def list(self, *, limit: int, after_id: str | None) -> Sequence[Dataset]:
        query = select(Dataset).where(Dataset.tenant_id == self.scope.tenant_id)
        if after_id is not None:
            query = query.where(Dataset.id < after_id)
        return self.session.scalars(query.order_by(Dataset.id.desc()).limit(limit + 1)).all()

    def add(self, dataset: Dataset) -> Dataset:
        if dataset.tenant_id != self.scope.tenant_id:
            raise ValueError("a dataset belongs to the scope's tenant")
        self.session.add(dataset)
        self.session.flush()
        return dataset

    def delete(self, dataset: Dataset) -> None:
        self.session.delete(dataset)

    def count(self) -> int:
        return int(self.session.scalar(select(func.count()).where(Dataset.tenant_id == self.scope.tenant_id)) or 0)
