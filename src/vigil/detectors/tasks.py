"""The detectors' job handlers: training a model version, and scoring a whole dataset into a result dataset."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from sqlalchemy.orm import Session

from vigil import ml
from vigil.core.database import TenantScope
from vigil.datasets.service import DatasetService
from vigil.detectors.service import (
    DETECT_JOB,
    TRAIN_JOB,
    DetectorService,
    mark_training_unsuccessful,
    ml_problem,
)
from vigil.jobs.models import Job
from vigil.jobs.registry import JobContext, JobOutcome, JobRegistry

SCORING_CHUNK_ROWS = 50_000


def register(registry: JobRegistry) -> None:
    registry.register(TRAIN_JOB, train, on_unsuccessful=_training_unsuccessful)
    registry.register(DETECT_JOB, detect_dataset)


def train(ctx: JobContext) -> JobOutcome:
    payload = ctx.payload
    with ctx.app.database.session() as session:
        datasets = DatasetService(session=session, scope=ctx.scope, app=ctx.app)
        frame = datasets.load_frame(dataset_id=payload["dataset_id"], columns=payload["features"])
    ctx.progress(15)
    try:
        model = ml.fit_detector(
            frame,
            algorithm=payload["algorithm"],
            parameters=payload["parameters"],
            contamination=payload["contamination"],
            features=payload["features"],
            preprocessing=ml.Preprocessing(**payload["preprocessing"]),
        )
    except ml.MLError as exc:
        raise ml_problem(exc) from exc
    ctx.progress(85)
    key = ctx.app.blobs.key(ctx.scope, "models", payload["detector_id"], f"{ctx.job_id}.vmdl")
    ctx.app.blobs.put_bytes(key, ml.dump_artifact(model, key=ctx.app.secret_key))
    ctx.progress(95)
    result: dict[str, Any] = {
        "detector_id": payload["detector_id"],
        "dataset_id": payload["dataset_id"],
        "threshold": float(model.threshold),
        "training_rows": int(model.n_train_rows),
        "features": list(model.features),
    }

    def record(session: Session) -> None:
        service = DetectorService(session=session, scope=ctx.scope, app=ctx.app)
        result["model_version"] = service.record_version(
            detector_id=payload["detector_id"],
            job_id=ctx.job_id,
            payload=payload,
            artifact_key=key,
            model=model,
        )

    return JobOutcome(result=result, apply=record)


def _training_unsuccessful(session: Session, job: Job, status: str, error: dict[str, Any]) -> None:
    mark_training_unsuccessful(
        session=session,
        scope=TenantScope(job.tenant_id),
        detector_id=job.payload["detector_id"],
        status=status,
        reason=str(error.get("detail", "Training failed.")),
    )


def detect_dataset(ctx: JobContext) -> JobOutcome:
    payload = ctx.payload
    with ctx.app.database.session() as session:
        detectors = DetectorService(session=session, scope=ctx.scope, app=ctx.app)
        _, model = detectors.load_model(detector_id=payload["detector_id"], version=payload["version"])
        frame = detectors.datasets.load_frame(dataset_id=payload["dataset_id"])
    ctx.progress(10)
    chunks = []
    for start in range(0, max(frame.height, 1), SCORING_CHUNK_ROWS):
        try:
            chunks.append(model.score(frame.slice(start, SCORING_CHUNK_ROWS)))
        except ml.MLError as exc:
            raise ml_problem(exc) from exc
        ctx.progress(10 + 80 * min(1.0, (start + SCORING_CHUNK_ROWS) / max(frame.height, 1)))
    scores = np.concatenate(chunks) if chunks else np.empty(0)
    flags = scores > model.threshold
    scored = frame.with_columns(pl.Series("score", scores), pl.Series("is_anomaly", flags))
    anomalies = int(flags.sum())
    result: dict[str, Any] = {
        "detector_id": payload["detector_id"],
        "dataset_id": payload["dataset_id"],
        "model_version": payload["version"],
        "threshold": float(model.threshold),
        "total": int(frame.height),
        "anomalies": anomalies,
        "anomaly_rate": anomalies / frame.height if frame.height else 0.0,
    }

    def store(session: Session) -> None:
        datasets = DatasetService(session=session, scope=ctx.scope, app=ctx.app)
        stored = datasets.create_from_table(
            table=scored.to_arrow(),
            name=f"detections-{payload['detector_id']}-v{payload['version']}",
            description=f"Scores of dataset {payload['dataset_id']} by detector {payload['detector_id']}.",
            source_format="parquet",
            created_by=None,
            origin={
                "kind": "detection",
                "job_id": ctx.job_id,
                **{k: payload[k] for k in ("detector_id", "dataset_id")},
            },
            commit=False,
        )
        result["result_dataset_id"] = stored.id

    return JobOutcome(result=result, apply=store)
