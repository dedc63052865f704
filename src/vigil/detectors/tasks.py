"""The detectors' job handlers: training a model version, and scoring a whole dataset into a result dataset."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
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
from vigil.jobs.registry import JobContext, JobOutcome, JobRegistry, Partitioning

SCORING_CHUNK_ROWS = 50_000


def register(registry: JobRegistry) -> None:
    registry.register(TRAIN_JOB, train, on_unsuccessful=_training_unsuccessful)
    registry.register(
        DETECT_JOB,
        detect_dataset,
        partitioning=Partitioning(split=split_detection, run_part=score_part, merge=merge_detection),
    )


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
    """Scores a whole dataset in this process: the same split → parts → merge as across workers."""
    parts = split_detection(ctx)
    share = 90.0 / max(1, len(parts))
    summaries = [score_part(ctx.scaled(5 + i * share, 5 + (i + 1) * share), i, spec) for i, spec in enumerate(parts)]
    return merge_detection(ctx.scaled(95, 100), summaries)


def split_detection(ctx: JobContext) -> list[dict[str, Any]]:
    """Runs of whole row groups of about `job_partition_rows` rows each (at least one part, even for no rows)."""
    with ctx.app.database.session() as session:
        groups = DatasetService(session=session, scope=ctx.scope, app=ctx.app).row_groups(
            dataset_id=ctx.payload["dataset_id"]
        )
    target = ctx.app.settings.job_partition_rows
    parts: list[dict[str, Any]] = []
    offset = rows = 0
    for size in groups:
        rows += size
        if rows >= target:
            parts.append({"offset": offset, "rows": rows})
            offset, rows = offset + rows, 0
    if rows or not parts:
        parts.append({"offset": offset, "rows": rows})
    return parts


def score_part(ctx: JobContext, index: int, spec: dict[str, Any]) -> dict[str, Any]:
    """Scores rows [offset, offset + rows) and stores them, with `score` and `is_anomaly`, as a scratch file."""
    payload = ctx.payload
    with ctx.app.database.session() as session:
        detectors = DetectorService(session=session, scope=ctx.scope, app=ctx.app)
        _, _, model = detectors.load_model(detector_id=payload["detector_id"], version=payload["version"])
        frame = detectors.datasets.load_frame(
            dataset_id=payload["dataset_id"], offset=spec["offset"], length=spec["rows"]
        )
    ctx.progress(20)
    chunks = []
    for start in range(0, max(frame.height, 1), SCORING_CHUNK_ROWS):
        try:
            chunks.append(model.score(frame.slice(start, SCORING_CHUNK_ROWS)))
        except ml.MLError as exc:
            raise ml_problem(exc) from exc
        ctx.progress(20 + 70 * min(1.0, (start + SCORING_CHUNK_ROWS) / max(frame.height, 1)))
    scores = np.concatenate(chunks) if chunks else np.empty(0)
    flags = scores > model.threshold
    scored = frame.with_columns(pl.Series("score", scores), pl.Series("is_anomaly", flags))
    key = ctx.scratch_key(f"scores-{index:05d}.parquet")
    staging = ctx.app.blobs.staging_path(ctx.scope)
    try:
        scored.write_parquet(staging)
        ctx.app.blobs.put_file(key, staging)
    finally:
        staging.unlink(missing_ok=True)
    ctx.progress(100)
    return {"key": key, "rows": int(frame.height), "anomalies": int(flags.sum())}


def merge_detection(ctx: JobContext, parts: list[dict[str, Any]]) -> JobOutcome:
    """The parts, in order, as one result dataset; the totals of their summaries."""
    payload = ctx.payload
    with ctx.app.database.session() as session:
        _, _, model = DetectorService(session=session, scope=ctx.scope, app=ctx.app).load_model(
            detector_id=payload["detector_id"], version=payload["version"]
        )
    tables = [pq.read_table(ctx.app.blobs.local_path(part["key"])) for part in parts]
    scored = pa.concat_tables(tables) if tables else pa.table({})
    total = sum(int(part["rows"]) for part in parts)
    anomalies = sum(int(part["anomalies"]) for part in parts)
    result: dict[str, Any] = {
        "detector_id": payload["detector_id"],
        "dataset_id": payload["dataset_id"],
        "model_version": payload["version"],
        "threshold": float(model.threshold),
        "total": total,
        "anomalies": anomalies,
        "anomaly_rate": anomalies / total if total else 0.0,
        "partitions": len(parts),
    }

    def store(session: Session) -> None:
        datasets = DatasetService(session=session, scope=ctx.scope, app=ctx.app)
        stored = datasets.create_from_table(
            table=scored,
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
