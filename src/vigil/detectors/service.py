"""Detector use cases: configure, train (as a job) into model versions, and detect with the current version."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from sqlalchemy.orm import Session

from vigil import analysis, ml
from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.core.errors import ArtifactIntegrity, InvalidInput, InvalidState, NotFound, VigilError
from vigil.core.ids import new_id
from vigil.core.pagination import decode_cursor, page_of
from vigil.core.timing import PhaseTimer
from vigil.datasets import formats
from vigil.datasets.service import DatasetService, storage_meter
from vigil.detectors.artifact_cache import models as model_cache
from vigil.detectors.inline import records_matrix
from vigil.detectors.models import Detector, ModelVersion
from vigil.detectors.repository import DetectorRepository
from vigil.detectors.schemas import (
    AlgorithmList,
    AlgorithmPublic,
    DetectorCreate,
    DetectorPublic,
    DetectorUpdate,
    ModelVersionPublic,
    PreprocessingSpec,
    ThresholdRule,
)
from vigil.identity.quotas import policy_of
from vigil.jobs.schemas import JobPublic
from vigil.jobs.service import JobService

TRAIN_JOB = "detector.train"
DETECT_JOB = "detector.detect"
USABLE_KINDS = {"numeric", "boolean"}


def ml_problem(exc: ml.MLError) -> VigilError:
    """The engine's errors, as the problems a user sees."""
    if isinstance(exc, ml.ArtifactTampered):
        return ArtifactIntegrity(
            "The stored model failed its integrity check and was not loaded; retrain the detector."
        )
    if isinstance(exc, ml.InvalidParameters):
        return InvalidInput(str(exc), errors=exc.errors)
    if isinstance(exc, ml.InvalidFeatures):
        return InvalidInput(str(exc), errors=getattr(exc, "errors", None) or [])
    if isinstance(exc, ml.UnknownAlgorithm):
        return InvalidInput(
            str(exc), errors=[{"loc": ["body", "algorithm"], "msg": str(exc), "type": "unknown_algorithm"}]
        )
    return InvalidInput(str(exc))


def catalog() -> AlgorithmList:
    return AlgorithmList(items=[AlgorithmPublic.model_validate(entry) for entry in ml.describe_catalog()])


def explain_frame(model: ml.FittedDetector, frame: pl.DataFrame) -> ml.Explanation:
    """The model's explanation of `frame`'s rows (its own method, or Shapley sampling)."""
    return ml.explain(model, model.preprocessor.transform(frame))


def version_public(detector: Detector, version: ModelVersion) -> ModelVersionPublic:
    public = ModelVersionPublic.model_validate(version)
    try:
        method: str | None = ml.get_entry(version.algorithm).explainer
    except ml.MLError:
        method = None
    return public.model_copy(
        update={"active": detector.current_version == version.version, "explanation_method": method}
    )


@dataclass(frozen=True)
class Detection:
    """Scores of a batch of rows by one model version; the router shapes it as JSON, Parquet or Arrow."""

    detector_id: str
    model_version: int
    threshold: float
    scores: np.ndarray
    flags: np.ndarray
    explanation: builtins.list[builtins.list[tuple[str, float]]] | None = None
    explanation_method: str | None = None
    # 0–1: where each score falls among the training scores (see `FittedDetector.percentiles`).
    percentiles: np.ndarray | None = None
    # Rows with a missing feature value that preprocessing filled in (None: none could be missing).
    imputed: np.ndarray | None = None

    @property
    def anomalies(self) -> int:
        return int(self.flags.sum())

    def summary(self) -> dict[str, Any]:
        total = int(self.scores.shape[0])
        return {
            "detector_id": self.detector_id,
            "model_version": self.model_version,
            "threshold": self.threshold,
            "total": total,
            "anomalies": self.anomalies,
            "anomaly_rate": self.anomalies / total if total else 0.0,
            "imputed_rows": int(self.imputed.sum()) if self.imputed is not None else 0,
            **({"explanation_method": self.explanation_method} if self.explanation_method else {}),
        }


@dataclass(frozen=True, slots=True)
class ModelRef:
    """Which model version a detection uses: what the request path needs of the detector and version rows, small
    and immutable, so it can be kept in the app's lookup cache (`AppContext.lookups`)."""

    detector_id: str
    version: int
    version_id: str
    artifact_key: str


class DetectorService:
    def __init__(self, *, session: Session, scope: TenantScope, app: AppContext) -> None:
        self.session = session
        self.scope = scope
        self.app = app
        self.detectors = DetectorRepository(session=session, scope=scope)
        self.jobs = JobService(session=session, scope=scope, app=app)
        self.datasets = DatasetService(session=session, scope=scope, app=app)

    # -- configuration ---------------------------------------------------------------------------------------
    def create(self, *, data: DetectorCreate, created_by: str | None) -> DetectorPublic:
        policy = policy_of(self.session, self.scope, self.app.settings, lock=True)
        _check_allowed(data.algorithm, policy.allowed_algorithms)
        policy.check("detectors", used=self.detectors.count())
        parameters = self._validated_parameters(data.algorithm, data.parameters)
        detector = Detector(
            id=new_id("det"),
            tenant_id=self.scope.tenant_id,
            name=data.name,
            description=data.description,
            algorithm=data.algorithm,
            parameters=parameters,
            contamination=data.contamination if data.contamination is not None else policy.default_contamination,
            features=data.features,
            preprocessing=data.preprocessing.model_dump(),
            threshold_rule=self._threshold_rule(data.threshold),
            status="created",
            created_by=created_by,
        )
        self.detectors.add(detector)
        self.session.commit()
        return DetectorPublic.model_validate(detector)

    def get(self, *, detector_id: str) -> DetectorPublic:
        return DetectorPublic.model_validate(self._get(detector_id))

    def list(self, *, limit: int, cursor: str | None) -> tuple[list[DetectorPublic], str | None]:
        rows = self.detectors.list(limit=limit, after_id=decode_cursor(cursor))
        items, next_cursor = page_of(rows, limit=limit, id_of=lambda d: d.id)
        return [DetectorPublic.model_validate(d) for d in items], next_cursor

    def count(self) -> int:
        return self.detectors.count()

    def update(self, *, detector_id: str, data: DetectorUpdate) -> DetectorPublic:
        """Changes apply to the next training; existing model versions keep the configuration they were built with."""
        detector = self._get(detector_id)
        if data.parameters is not None:
            detector.parameters = self._validated_parameters(detector.algorithm, data.parameters)
        for field in ("name", "description", "contamination", "features"):
            if field in data.model_fields_set:
                value = getattr(data, field)
                if value is None and field in ("name", "contamination"):
                    raise InvalidInput(f"{field} cannot be null.", errors=[{"loc": ["body", field], "msg": "null"}])
                setattr(detector, field, value)
        if data.preprocessing is not None:
            detector.preprocessing = data.preprocessing.model_dump()
        if "threshold" in data.model_fields_set:
            detector.threshold_rule = self._threshold_rule(data.threshold)
        self.session.commit()
        return DetectorPublic.model_validate(detector)

    def _threshold_rule(self, rule: ThresholdRule | None) -> dict[str, Any] | None:
        if rule is None or rule.method == "contamination":
            return None
        if rule.method == "fpr":
            self.datasets.get(dataset_id=rule.reference_dataset_id)  # a 404 now, not a failed training later
        return rule.model_dump()

    def delete(self, *, detector_id: str) -> None:
        detector = self._get(detector_id)
        for job in self.jobs.jobs.active_for_subject(detector_id):
            job.cancel_requested = True
        keys = self.detectors.all_artifact_keys(detector_id)
        self.detectors.delete(detector)
        self.session.commit()
        model_cache.forget(keys)
        for key in keys:
            self.app.blobs.delete(key, best_effort=True)

    def versions(
        self, *, detector_id: str, limit: int, cursor: str | None
    ) -> tuple[builtins.list[ModelVersionPublic], str | None]:
        self._get(detector_id)
        rows = self.detectors.versions(detector_id, limit=limit, after_id=decode_cursor(cursor))
        items, next_cursor = page_of(rows, limit=limit, id_of=lambda v: v.id)
        detector = self._get(detector_id)
        return [version_public(detector, v) for v in items], next_cursor

    # -- training --------------------------------------------------------------------------------------------
    def train(self, *, detector_id: str, dataset_id: str, created_by: str | None, promote: bool = True) -> JobPublic:
        detector = self._get(detector_id)
        # The tenant's allowed algorithms may have narrowed since the detector was made.
        _check_allowed(detector.algorithm, policy_of(self.session, self.scope, self.app.settings).allowed_algorithms)
        schema = self.datasets.schema_of(dataset_id=dataset_id)
        features = self._check_features(detector, schema)
        job = self.jobs.enqueue(
            kind=TRAIN_JOB,
            subject_id=detector.id,
            created_by=created_by,
            payload={
                "detector_id": detector.id,
                "dataset_id": dataset_id,
                "algorithm": detector.algorithm,
                "parameters": detector.parameters,
                "contamination": detector.contamination,
                "features": features,
                "preprocessing": detector.preprocessing,
                "threshold_rule": detector.threshold_rule,
                "promote": promote,
            },
        )
        detector.status, detector.status_reason = "training", None
        self.session.commit()
        self.jobs.wake_workers()
        return JobPublic.model_validate(job)

    def _check_features(self, detector: Detector, schema: builtins.list[dict[str, Any]]) -> builtins.list[str]:
        """Refuses, before any job starts, features the detector could not use."""
        kinds = {c["name"]: c["kind"] for c in schema}
        allowed = set(USABLE_KINDS)
        if PreprocessingSpec.model_validate(detector.preprocessing).categorical != "error":
            allowed.add("categorical")
        if detector.features is None:
            features = [name for name, kind in kinds.items() if kind in USABLE_KINDS]
            if not features:
                raise InvalidInput("The dataset has no numeric or boolean column to train on; name the features.")
            return features
        errors = []
        for name in detector.features:
            if name not in kinds:
                errors.append({"loc": ["features", name], "msg": "no such column in the dataset"})
            elif kinds[name] not in allowed:
                hint = " (set preprocessing.categorical to onehot or ordinal)" if kinds[name] == "categorical" else ""
                errors.append({"loc": ["features", name], "msg": f"a {kinds[name]} column cannot be a feature{hint}"})
        if errors:
            raise InvalidInput(f"{len(errors)} feature(s) cannot be used with this dataset.", errors=errors)
        return list(detector.features)

    # -- detection -------------------------------------------------------------------------------------------
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
            table = formats.table_from_records(records, limits=self.datasets.limits)
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
            present = [name for name in model.features if name in frame.columns]
            if present and frame.height:
                missing = frame.select(pl.any_horizontal([pl.col(name).is_null() for name in present])).to_series()
                return dataclasses.replace(detection, imputed=missing.to_numpy())
            return detection

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
        _, model_version, model = self.load_model(detector_id=detector_id, version=version)
        rows = self.datasets.get(dataset_id=dataset_id).rows
        if explain_top_k is not None and rows > self.app.settings.explain_job_max_rows:
            raise InvalidInput(
                f"A detection job explains at most {self.app.settings.explain_job_max_rows} rows; this dataset has "
                f"{rows}. Explain a sample of it, or detect without explain.",
                limit=self.app.settings.explain_job_max_rows,
            )
        schema = self.datasets.schema_of(dataset_id=dataset_id)
        _check_columns([c["name"] for c in schema], model.features, strict=False)
        job = self.jobs.enqueue(
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
        self.jobs.wake_workers()
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
        found = self.detectors.with_version(detector_id, version)
        if found is None:
            raise NotFound("detector", detector_id)
        detector, model_version = found
        model_version = _the_version(detector, model_version, version)
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
        return ref, self._loaded(ref.version_id, ref.artifact_key)

    def load_model(self, *, detector_id: str, version: int | None) -> tuple[Detector, ModelVersion, ml.FittedDetector]:
        detector = self._get(detector_id)
        wanted = version or detector.current_version
        found = self.detectors.version(detector_id, wanted) if wanted is not None else None
        model_version = _the_version(detector, found, version)
        return detector, model_version, self._loaded(model_version.id, model_version.artifact_key)

    def _loaded(self, version_id: str, artifact_key: str) -> ml.FittedDetector:
        def load() -> ml.FittedDetector:
            try:
                return ml.load_artifact(
                    self.app.blobs.get_bytes(artifact_key), key=self.app.artifact_key, also=(self.app.secret_key,)
                )
            except ml.MLError as exc:
                raise ml_problem(exc) from exc
            except FileNotFoundError as exc:
                raise ArtifactIntegrity("The stored model is missing; retrain the detector.") from exc

        return model_cache.get(version_id, artifact_key, load)

    # -- used by the job handlers ----------------------------------------------------------------------------
    def record_version(
        self,
        *,
        detector_id: str,
        job_id: str | None,
        payload: dict[str, Any],
        artifact_key: str,
        model: ml.FittedDetector,
        size_bytes: int = 0,
        dataset: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        origin: dict[str, Any] | None = None,
        promote: bool = True,
    ) -> int:
        detector = self._get(detector_id)
        number = self.detectors.next_version(detector_id)
        self.detectors.add_version(
            ModelVersion(
                id=new_id("mv"),
                tenant_id=self.scope.tenant_id,
                detector_id=detector_id,
                version=number,
                dataset_id=payload["dataset_id"],
                job_id=job_id,
                artifact_key=artifact_key,
                size_bytes=size_bytes,
                algorithm=payload["algorithm"],
                parameters=payload["parameters"],
                features=list(model.features),
                threshold=float(model.threshold),
                training_rows=int(model.n_train_rows),
                score_summary=dict(model.score_summary),
                dataset=dataset,
                preprocessing=payload.get("preprocessing"),
                contamination=float(model.contamination),
                threshold_rule=payload.get("threshold_rule") or {"method": "contamination"},
                training_seconds=float(model.fit_seconds),
                labels_used=int(model.labels_used),
                metrics=metrics,
                origin=origin,
            )
        )
        if promote or detector.current_version is None:
            self.activate(detector, number)
        if detector.status in ("training", "created", "failed"):
            detector.status = "trained"
        detector.status_reason = None
        return number

    def store_artifact(self, key: str, artifact: bytes) -> int:
        """Writes a model artifact once the tenant's storage quota has room for it; its size (to record)."""
        storage_meter(self.app).check(self.session, self.scope, self.app.settings, adding=len(artifact))
        return self.app.blobs.put_bytes(key, artifact)

    def activate(self, detector: Detector, number: int) -> None:
        """Makes version `number` the active one, remembering the one it replaces for rollback."""
        if detector.current_version is not None and detector.current_version != number:
            detector.previous_versions = [*(detector.previous_versions or []), detector.current_version][-50:]
        detector.current_version = number

    def _validated_parameters(self, algorithm: str, parameters: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(ml.validate_parameters(algorithm, parameters))
        except ml.MLError as exc:
            raise ml_problem(exc) from exc

    def _get(self, detector_id: str) -> Detector:
        detector = self.detectors.get(detector_id)
        if detector is None:
            raise NotFound("detector", detector_id)
        return detector


def _the_version(detector: Detector, found: ModelVersion | None, version: int | None) -> ModelVersion:
    """The model version asked for (`version`, else the detector's current one), or the problem that says why
    there is none: no model trained yet (409), or no such version (404)."""
    wanted = version or detector.current_version
    if wanted is None:
        raise InvalidState(
            f"Detector {detector.id!r} has no trained model yet (status {detector.status!r}); train it first.",
            detector_status=detector.status,
        )
    if found is None:
        raise NotFound("model version", f"{detector.id}@{wanted}")
    return found


def mark_training_unsuccessful(
    *, session: Session, scope: TenantScope, detector_id: str, status: str, reason: str
) -> None:
    """A training that failed or was cancelled must not leave its detector "training" forever."""
    detector = DetectorRepository(session=session, scope=scope).get(detector_id)
    if detector is None or detector.status != "training":
        return
    if status == "cancelled":
        detector.status = "trained" if detector.current_version else "created"
        detector.status_reason = "The last training was cancelled."
    else:
        detector.status, detector.status_reason = "failed", reason


def _check_allowed(algorithm: str, allowed: builtins.list[str] | None) -> None:
    if allowed is not None and algorithm not in allowed:
        raise InvalidInput(
            f"Algorithm {algorithm!r} is not allowed in this tenant.",
            errors=[{"loc": ["body", "algorithm"], "msg": "not among the tenant's allowed algorithms"}],
            allowed=allowed,
        )


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


def scorer_for(
    *, session: Session, scope: TenantScope, app: AppContext, detector_id: str, version: int | None
) -> analysis.Scorer:
    """A trained model version as the analysis engine's `Scorer`: the datasets domain's analysis reports use it
    (through the port the app wires) to measure which features drive this detector's scores."""
    detector, model_version, model = DetectorService(session=session, scope=scope, app=app).load_model(
        detector_id=detector_id, version=version
    )

    def score(frame: pl.DataFrame) -> np.ndarray:
        try:
            return model.score(frame)
        except ml.MLError as exc:
            raise ml_problem(exc) from exc

    return analysis.Scorer(
        features=list(model.features), score=score, name=f"{detector.name} (v{model_version.version})"
    )


def model_bytes(session: Session, scope: TenantScope) -> int:
    """The model artifacts' share of a tenant's storage: a counter for the `StorageMeter`."""
    return DetectorRepository(session=session, scope=scope).stored_bytes()
