"""Detector use cases: configure, train (as a job) into model versions, and load a version's model (detection,
with the version the detector names, is `detection.py`'s)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy.orm import Session

from vigil import analysis, ml
from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.core.errors import (
    ArtifactIntegrity,
    IncompatibleArtifact,
    InvalidInput,
    InvalidState,
    NotFound,
    VigilError,
)
from vigil.core.ids import new_id
from vigil.core.pagination import decode_cursor, page_of
from vigil.datasets.service import DatasetService, storage_meter
from vigil.detectors.artifact_cache import models as model_cache
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
from vigil.jobs.service import JobService, active_jobs

TRAIN_JOB = "detector.train"
DETECT_JOB = "detector.detect"
USABLE_KINDS = {"numeric", "boolean"}


def ml_problem(exc: ml.MLError) -> VigilError:
    """The engine's errors, as the problems a user sees."""
    if isinstance(exc, ml.ArtifactIncompatible):
        return IncompatibleArtifact(
            f"{exc} Retraining the detector makes a model this installation can load.",
            written_by=exc.written_by,
            read_by=exc.read_by,
        )
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

    # -- models ----------------------------------------------------------------------------------------------
    def load_model(self, *, detector_id: str, version: int | None) -> tuple[Detector, ModelVersion, ml.FittedDetector]:
        detector = self._get(detector_id)
        wanted = version or detector.current_version
        found = self.detectors.version(detector_id, wanted) if wanted is not None else None
        model_version = checked_version(detector, found, version)
        return detector, model_version, self.loaded(model_version.id, model_version.artifact_key)

    def loaded(self, version_id: str, artifact_key: str) -> ml.FittedDetector:
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


def checked_version(detector: Detector, found: ModelVersion | None, version: int | None) -> ModelVersion:
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


def model_blob_refs(session: Session, scope: TenantScope, keys: builtins.list[str]) -> builtins.list[str]:
    """The model versions' artifacts among `keys` — and a training's artifact before its version is recorded: it is
    named after its job (`models/<detector>/<job>.vmdl`), and a retried attempt writes the same key again, so it is
    in use while that job is queued or running. A referrer for the orphan-blob sweep."""
    referenced = set(DetectorRepository(session=session, scope=scope).referenced_artifacts(keys))
    stems = {key: key.rsplit("/", 1)[-1].removesuffix(".vmdl") for key in keys if key not in referenced}
    active = active_jobs(session, scope, set(stems.values()))
    return [key for key in keys if key in referenced or stems.get(key) in active]


def model_blob_keys(session: Session, scope: TenantScope, after: str | None, limit: int) -> Sequence[str]:
    """A page of the model versions' artifacts, in key order: for the missing-blob check."""
    return DetectorRepository(session=session, scope=scope).artifact_keys(after=after, limit=limit)
