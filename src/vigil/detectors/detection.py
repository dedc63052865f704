"""Detection use cases: score rows with a detector's model version — inline records, a Parquet or Arrow table,
or a stored dataset (as a job) — through the process's caches of model lookups and loaded models."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from sqlalchemy.orm import Session

from vigil import ml
from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.core.errors import InvalidInput, NotFound
from vigil.core.timing import PhaseTimer
from vigil.datasets import formats
from vigil.detectors.inline import records_matrix
from vigil.detectors.results import Detection
from vigil.detectors.service import DETECT_JOB, DetectorService, checked_version, explain_frame, ml_problem
from vigil.jobs.schemas import JobPublic


@dataclass(frozen=True, slots=True)
class ModelRef:
    """Which model version a detection uses: what the request path needs of the detector and version rows, small
    and immutable, so it can be kept in the app's lookup cache (`AppContext.lookups`)."""

    detector_id: str
    version: int
    version_id: str
    artifact_key: str


class DetectionService:
    def __init__(self, *, session: Session, scope: TenantScope, app: AppContext) -> None:
        self.session = session
        self.scope = scope
        self.app = app
        self.service = DetectorService(session=session, scope=scope, app=app)
        self.datasets = self.service.datasets

    def detect_records(
        self,
        *,
        detector_id: str,
        records: builtins.list[dict[str, Any]],
        version: int | None,
        explain_top_k: int | None = None,
        timer: PhaseTimer | None = None,
    ) -> Detection:
        """Scores inline records. Plain numeric records go straight into a matrix; any other shape (and any request
        for explanations, which work on a frame) goes through a table, which validates every value and names what
        is wrong."""
        timer = timer or PhaseTimer()
        limit = self.app.settings.max_inline_records
        if len(records) > limit:
            raise InvalidInput(f"At most {limit} inline records; score larger data as a dataset.")
        self._check_explain_rows(len(records), explain_top_k)
        if explain_top_k is None:
            with timer.phase("model"):
                ref, model = self.load_ref(detector_id=detector_id, version=version)
            with timer.phase("convert"):
                matrix = records_matrix(records, model.features) if model.preprocessor.takes_matrix else None
            if matrix is not None:
                with timer.phase("score"):
                    return self._detection(ref, model, lambda: model.score_matrix(matrix))
        with timer.phase("convert"):
            table = formats.table_from_records(records, limits=self.service.datasets.limits)
        return self.detect_table(
            detector_id=detector_id,
            table=table,
            version=version,
            strict_columns=True,
            explain_top_k=explain_top_k,
            timer=timer,
        )

    def _check_explain_rows(self, rows: int, explain_top_k: int | None) -> None:
        limit = self.app.settings.explain_inline_max_rows
        if explain_top_k is not None and rows > limit:
            raise InvalidInput(
                f"Explanations are computed inline for at most {limit} rows, not {rows}: upload the rows as a "
                "dataset and detect it with explain (a job whose result dataset has the explanation columns).",
                errors=[{"loc": ["body", "explain"], "msg": f"at most {limit} rows inline", "type": "too_long"}],
                limit=limit,
            )

    def detect_table(
        self,
        *,
        detector_id: str,
        table: pa.Table,
        version: int | None,
        strict_columns: bool = False,
        explain_top_k: int | None = None,
        timer: PhaseTimer | None = None,
    ) -> Detection:
        timer = timer or PhaseTimer()
        self._check_explain_rows(table.num_rows, explain_top_k)
        with timer.phase("model"):
            ref, model = self.load_ref(detector_id=detector_id, version=version)
        with timer.phase("score"):
            frame = pl.from_arrow(table)
            assert isinstance(frame, pl.DataFrame)
            _check_columns(frame.columns, model.features, strict=strict_columns)
            explain = (frame, explain_top_k) if explain_top_k is not None else None
            detection = self._detection(ref, model, lambda: model.score(frame), explain=explain)
            imputed = imputed_rows(frame, model.features)
            return detection if imputed is None else dataclasses.replace(detection, imputed=imputed.to_numpy())

    @staticmethod
    def _detection(
        ref: ModelRef,
        model: ml.FittedDetector,
        score: Callable[[], np.ndarray],
        explain: tuple[pl.DataFrame, int] | None = None,
    ) -> Detection:
        """Scores (and, when asked, explanations of a frame's rows) as a `Detection`; the engine's errors as
        problems."""
        try:
            scores = score()
            explanation = explain_frame(model, explain[0]) if explain is not None else None
        except ml.MLError as exc:
            raise ml_problem(exc) from exc
        return Detection(
            detector_id=ref.detector_id,
            model_version=ref.version,
            threshold=float(model.threshold),
            scores=scores,
            flags=scores > model.threshold,
            explanation=explanation.top(explain[1]) if explanation is not None and explain and explain[1] else None,
            explanation_method=explanation.method if explanation is not None else None,
            percentiles=model.percentiles(scores),
        )

    def detect_dataset(
        self,
        *,
        detector_id: str,
        dataset_id: str,
        version: int | None,
        created_by: str | None,
        explain_top_k: int | None = None,
    ) -> JobPublic:
        _, model_version, model = self.service.load_model(detector_id=detector_id, version=version)
        rows = self.service.datasets.get(dataset_id=dataset_id).rows
        if explain_top_k is not None and rows > self.app.settings.explain_job_max_rows:
            raise InvalidInput(
                f"A detection job explains at most {self.app.settings.explain_job_max_rows} rows; this dataset has "
                f"{rows}. Explain a sample of it, or detect without explain.",
                limit=self.app.settings.explain_job_max_rows,
            )
        schema = self.service.datasets.schema_of(dataset_id=dataset_id)
        _check_columns([c["name"] for c in schema], model.features, strict=False)
        job = self.service.jobs.enqueue(
            kind=DETECT_JOB,
            subject_id=detector_id,
            created_by=created_by,
            payload={
                "detector_id": detector_id,
                "dataset_id": dataset_id,
                "version": model_version.version,
                "explain_top_k": explain_top_k,
            },
        )
        self.session.commit()
        self.service.jobs.wake_workers()
        return JobPublic.model_validate(job)

    def model_ref(self, *, detector_id: str, version: int | None) -> ModelRef:
        """The detector's model version (the current one by default), for the detect path: one query, kept in the
        app's lookup cache, which any commit to the detector tables in this process empties, and which another
        process's changes (a retraining, a promotion or rollback, a deletion) reach within
        `VIGIL_LOOKUP_CACHE_TTL_S`."""
        lookups = self.app.lookups
        key = ("model-ref", self.scope.tenant_id, detector_id, version)
        cached = lookups.get(key)
        if isinstance(cached, ModelRef):
            return cached
        generation = lookups.generation
        found = self.service.detectors.with_version(detector_id, version)
        if found is None:
            raise NotFound("detector", detector_id)
        detector, model_version = found
        model_version = checked_version(detector, model_version, version)
        ref = ModelRef(
            detector_id=detector.id,
            version=model_version.version,
            version_id=model_version.id,
            artifact_key=model_version.artifact_key,
        )
        lookups.put(key, ref, generation=generation)
        return ref

    def load_ref(self, *, detector_id: str, version: int | None) -> tuple[ModelRef, ml.FittedDetector]:
        """The model version the detect path uses and its fitted model (from the process's cache of loaded
        artifacts unless this version was not loaded yet)."""
        ref = self.model_ref(detector_id=detector_id, version=version)
        return ref, self.service.loaded(ref.version_id, ref.artifact_key)


def _check_columns(columns: list[str], features: list[str], *, strict: bool) -> None:
    present = set(columns)
    missing = [f for f in features if f not in present]
    extra = [c for c in columns if c not in set(features)] if strict else []
    errors = [{"loc": ["records", name], "msg": "missing feature column"} for name in missing[:50]]
    errors += [{"loc": ["records", name], "msg": "not a feature of this model"} for name in extra[:50]]
    if errors:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(map(repr, missing[:10]))}")
        if extra:
            parts.append(f"unexpected column(s) {', '.join(map(repr, extra[:10]))}")
        raise InvalidInput(f"The data does not match the model's features: {'; '.join(parts)}.", errors=errors)


def imputed_rows(frame: pl.DataFrame, features: Sequence[str]) -> pl.Series | None:
    """Which rows had a missing feature value (the model fills it in): None when the frame has none of them."""
    present = [name for name in features if name in frame.columns]
    if not present or not frame.height:
        return None
    return frame.select(pl.any_horizontal([pl.col(name).is_null() for name in present]).alias("imputed")).to_series()
