"""Feedback use cases: analysts label rows of a dataset as anomaly or normal for a detector; training learns from
the labels (`auto`) and every version is judged on the held-out part of them."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy.orm import Session

from vigil import ml
from vigil.core.context import AppContext
from vigil.core.database import TenantScope, utcnow
from vigil.core.errors import InvalidInput, NotFound
from vigil.core.ids import new_id
from vigil.core.pagination import decode_cursor, page_of
from vigil.datasets.service import DatasetService
from vigil.detectors.repository import DetectorRepository, FeedbackRepository
from vigil.detectors.schemas import FeedbackCreate, FeedbackDeleted, FeedbackLabelPublic, FeedbackSummary
from vigil.identity.quotas import policy_of

ANOMALY, NORMAL = 1, 0
# What a label column may hold (compared as lower-case text): everything else is refused, nulls are unlabelled.
_COLUMN_VALUES = {"anomaly": ANOMALY, "normal": NORMAL, "true": ANOMALY, "false": NORMAL, "1": ANOMALY, "0": NORMAL}


class FeedbackService:
    def __init__(self, *, session: Session, scope: TenantScope, app: AppContext) -> None:
        self.session = session
        self.scope = scope
        self.app = app
        self.labels = FeedbackRepository(session=session, scope=scope)
        self.detectors = DetectorRepository(session=session, scope=scope)
        self.datasets = DatasetService(session=session, scope=scope, app=app)

    def count(self) -> int:
        """The tenant's labels (its `feedback_labels` quota's use)."""
        return self.labels.count_tenant()

    def _detector(self, detector_id: str) -> None:
        if self.detectors.get(detector_id) is None:
            raise NotFound("detector", detector_id)

    def add(self, *, detector_id: str, data: FeedbackCreate, created_by: str | None) -> FeedbackSummary:
        """Adds or changes labels; all of them or none (a bad row index or value refuses the whole request)."""
        self._detector(detector_id)
        dataset = self.datasets.get(dataset_id=data.dataset_id)
        if data.labels is not None:
            wanted = self._from_items(data, dataset.rows)
        else:
            assert data.label_column is not None
            wanted = self._from_column(data.dataset_id, data.label_column)
        existing = self.labels.existing(detector_id, data.dataset_id, sorted(wanted))
        policy = policy_of(self.session, self.scope, self.app.settings, lock=True)
        new = [index for index in wanted if index not in existing]
        policy.check("feedback_labels", used=self.labels.count_tenant(), adding=len(new))
        changed = 0
        for index, label in existing.items():
            if label.label != wanted[index]:
                label.label, label.created_by, label.created_at = wanted[index], created_by, utcnow()
                changed += 1
        now = utcnow()
        self.labels.insert_many(
            [
                {
                    "id": new_id("lbl"),
                    "tenant_id": self.scope.tenant_id,
                    "detector_id": detector_id,
                    "dataset_id": data.dataset_id,
                    "row_index": index,
                    "label": wanted[index],
                    "created_by": created_by,
                    "created_at": now,
                }
                for index in new
            ]
        )
        self.session.flush()
        counts = self.labels.counts(detector_id, data.dataset_id)
        self.session.commit()
        return FeedbackSummary(
            detector_id=detector_id,
            dataset_id=data.dataset_id,
            added=len(new),
            changed=changed,
            anomalies=counts.get(ANOMALY, 0),
            normals=counts.get(NORMAL, 0),
        )

    @staticmethod
    def _from_items(data: FeedbackCreate, rows: int) -> dict[int, int]:
        assert data.labels is not None
        errors: list[dict[str, Any]] = []
        wanted: dict[int, int] = {}
        for position, item in enumerate(data.labels):
            if item.index >= rows:
                errors.append(
                    {
                        "loc": ["body", "labels", position, "index"],
                        "msg": f"no row {item.index}: the dataset has {rows} rows (0 to {rows - 1})",
                        "type": "row_not_found",
                    }
                )
            elif wanted.get(item.index, -1) not in (-1, _label(item.label)):
                errors.append(
                    {
                        "loc": ["body", "labels", position],
                        "msg": f"row {item.index} is labelled both anomaly and normal",
                        "type": "conflicting_labels",
                    }
                )
            else:
                wanted[item.index] = _label(item.label)
        if errors:
            raise InvalidInput(f"{len(errors)} label(s) cannot be applied; none were.", errors=errors[:50])
        return wanted

    def _from_column(self, dataset_id: str, column: str) -> dict[int, int]:
        schema = {c["name"] for c in self.datasets.schema_of(dataset_id=dataset_id)}
        if column not in schema:
            raise InvalidInput(
                f"The dataset has no column {column!r}.",
                errors=[{"loc": ["body", "label_column"], "msg": "no such column", "type": "missing_column"}],
            )
        values = self.datasets.load_frame(dataset_id=dataset_id, columns=[column]).get_column(column)
        text = values.cast(pl.String).str.strip_chars().str.to_lowercase()
        # Integer-valued floats (1.0, 0.0) are the same answer as 1 and 0.
        text = text.str.replace(r"^(-?\d+)\.0+$", "$1")
        known = text.is_in(list(_COLUMN_VALUES)) | text.is_null()
        if not bool(known.all()):
            bad = text.filter(~known).unique().head(5).to_list()
            raise InvalidInput(
                f"The label column {column!r} holds values other than anomaly/normal (true/false, 1/0): "
                f"{', '.join(map(repr, bad))}.",
                errors=[{"loc": ["body", "label_column"], "msg": "values other than anomaly/normal", "type": "label"}],
                values=bad,
            )
        codes = text.replace_strict(list(_COLUMN_VALUES), list(_COLUMN_VALUES.values()), default=None)
        present = codes.is_not_null().to_numpy()
        indices = np.flatnonzero(present)
        if indices.size == 0:
            raise InvalidInput(f"The label column {column!r} has no labels (every cell is empty).")
        labels = codes.to_numpy()[present].astype(np.int64)
        return dict(zip(indices.tolist(), labels.tolist(), strict=True))

    def list(
        self, *, detector_id: str, dataset_id: str | None, limit: int, cursor: str | None
    ) -> tuple[builtins.list[FeedbackLabelPublic], str | None]:
        self._detector(detector_id)
        rows = self.labels.list(detector_id, dataset_id=dataset_id, limit=limit, after_id=decode_cursor(cursor))
        items, next_cursor = page_of(rows, limit=limit, id_of=lambda label: label.id)
        return [FeedbackLabelPublic.model_validate(label) for label in items], next_cursor

    def delete(self, *, detector_id: str, label_id: str) -> None:
        self._detector(detector_id)
        label = self.labels.get(detector_id, label_id)
        if label is None:
            raise NotFound("feedback label", label_id)
        self.labels.delete(label)
        self.session.commit()

    def delete_for_dataset(self, *, detector_id: str, dataset_id: str) -> FeedbackDeleted:
        self._detector(detector_id)
        self.datasets.get(dataset_id=dataset_id)
        deleted = self.labels.delete_for_dataset(detector_id, dataset_id)
        self.session.commit()
        return FeedbackDeleted(deleted=deleted)

    def for_rows(self, *, detector_id: str, dataset_id: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """The dataset's labels as one value per row (-1 unlabelled), and which labelled rows are held out."""
        labels = np.full(rows, -1, dtype=np.int64)
        pairs = [(i, v) for i, v in self.labels.labels(detector_id, dataset_id) if i < rows]
        if pairs:
            index = np.array([i for i, _ in pairs], dtype=np.int64)
            labels[index] = [v for _, v in pairs]
        held_out = (labels >= 0) & ml.holdout_mask(np.arange(rows), key=dataset_id)
        return labels, held_out


def _label(name: str) -> int:
    return ANOMALY if name == "anomaly" else NORMAL
