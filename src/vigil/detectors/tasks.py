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
from vigil.detectors.detection import imputed_rows
from vigil.detectors.feedback import FeedbackService
from vigil.detectors.service import (
    DETECT_JOB,
    TRAIN_JOB,
    DetectorService,
    explain_frame,
    mark_training_unsuccessful,
    ml_problem,
)
from vigil.jobs.models import Job
from vigil.jobs.registry import JobContext, JobOutcome, JobRegistry, Partitioning

SCORING_CHUNK_ROWS = 50_000
# Explaining costs far more than scoring; smaller chunks keep progress moving and memory bounded.
EXPLAIN_CHUNK_ROWS = 1_000


def explanation_columns(explained: list[list[tuple[str, float]]], top_k: int) -> list[pl.Series]:
    """`top_feature_1`, `top_contribution_1`, … for a scored dataset (null where a model has fewer features)."""
    columns: list[pl.Series] = []
    for rank in range(top_k):
        features = [row[rank][0] if rank < len(row) else None for row in explained]
        values = [row[rank][1] if rank < len(row) else None for row in explained]
        columns.append(pl.Series(f"top_feature_{rank + 1}", features, dtype=pl.String))
        columns.append(pl.Series(f"top_contribution_{rank + 1}", values, dtype=pl.Float64))
    return columns


def register(registry: JobRegistry) -> None:
    registry.register(TRAIN_JOB, train, on_unsuccessful=_training_unsuccessful)
    registry.register(
        DETECT_JOB,
        detect_dataset,
        partitioning=Partitioning(split=split_detection, run_part=score_part, merge=merge_detection),
    )


def train(ctx: JobContext) -> JobOutcome:
    """Fits a model on the dataset; with feedback labels, `auto` learns from the ones not held out, and the
    held-out ones measure the new version's quality; a threshold rule may then move its threshold."""
    payload = ctx.payload
    dataset_id = payload["dataset_id"]
    ctx.progress(1, "loading data")
    with ctx.app.database.session() as session:
        datasets = DatasetService(session=session, scope=ctx.scope, app=ctx.app)
        frame = datasets.load_frame(dataset_id=dataset_id, columns=payload["features"])
        stored = datasets.get(dataset_id=dataset_id)
        feedback = FeedbackService(session=session, scope=ctx.scope, app=ctx.app)
        labels, held_out = feedback.for_rows(
            detector_id=payload["detector_id"], dataset_id=dataset_id, rows=frame.height
        )
    learn = np.where(held_out, -1, labels)
    try:
        model = ml.fit_detector(
            frame,
            algorithm=payload["algorithm"],
            parameters=payload["parameters"],
            contamination=payload["contamination"],
            features=payload["features"],
            preprocessing=ml.Preprocessing(**payload["preprocessing"]),
            labels=learn if (learn >= 0).any() else None,
            # 15–75 %: by its stages, and inside the fit tree by tree or member by member where the library allows.
            progress=lambda share, stage: ctx.progress(15 + 60 * share, stage),
        )
        ctx.progress(75, "measuring")
        metrics = None
        if held_out.any():
            # Scored with the whole dataset, as `compare` does: ECOD and COPOD rank a batch against itself too.
            scores = model.score(frame)[held_out]
            metrics = {"holdout": ml.quality(labels[held_out], scores), "holdout_fraction": ml.HOLDOUT_FRACTION}
        model = _apply_threshold_rule(ctx, payload, model)
    except ml.MLError as exc:
        raise ml_problem(exc) from exc
    ctx.progress(85, "saving the model")
    key = ctx.app.blobs.key(ctx.scope, "models", payload["detector_id"], f"{ctx.job_id}.vmdl")
    artifact = ml.dump_artifact(model, key=ctx.app.artifact_key)
    with ctx.app.database.session() as session:
        size = DetectorService(session=session, scope=ctx.scope, app=ctx.app).store_artifact(key, artifact)
    ctx.progress(95)
    result: dict[str, Any] = {
        "detector_id": payload["detector_id"],
        "dataset_id": payload["dataset_id"],
        "threshold": float(model.threshold),
        "training_rows": int(model.n_train_rows),
        "features": list(model.features),
    }

    result["labels_used"] = int(model.labels_used)
    result["metrics"] = metrics

    def record(session: Session) -> None:
        service = DetectorService(session=session, scope=ctx.scope, app=ctx.app)
        result["model_version"] = service.record_version(
            detector_id=payload["detector_id"],
            job_id=ctx.job_id,
            payload=payload,
            artifact_key=key,
            model=model,
            size_bytes=size,
            dataset={
                "id": stored.id,
                "name": stored.name,
                "rows": stored.rows,
                "created_at": stored.created_at.isoformat(),
            },
            metrics=metrics,
            promote=bool(payload.get("promote", True)),
        )

    # Cancelled (or taken over) meanwhile: the artifact written above belongs to no version.
    return JobOutcome(result=result, apply=record, discard=lambda: ctx.app.blobs.delete(key, best_effort=True))


def _apply_threshold_rule(ctx: JobContext, payload: dict[str, Any], model: ml.FittedDetector) -> ml.FittedDetector:
    rule = payload.get("threshold_rule") or {}
    if rule.get("method") == "score":
        return ml.with_threshold(model, float(rule["value"]))
    if rule.get("method") != "fpr":
        return model
    reference = rule["reference_dataset_id"]
    with ctx.app.database.session() as session:
        datasets = DatasetService(session=session, scope=ctx.scope, app=ctx.app)
        frame = datasets.load_frame(dataset_id=reference, columns=model.features)
        labels, _ = FeedbackService(session=session, scope=ctx.scope, app=ctx.app).for_rows(
            detector_id=payload["detector_id"], dataset_id=reference, rows=frame.height
        )
    # The reference's rows labelled normal when it has labels; otherwise all its rows are taken as normal.
    normal = labels == 0 if (labels == 0).any() else labels != 1
    scores = model.score(frame.filter(pl.Series(normal)))
    if scores.shape[0] == 0:
        raise ml.MLError("The reference dataset has no normal rows to set a false-positive rate on.")
    return ml.with_threshold(model, ml.fpr_threshold(scores, float(rule["target_fpr"])))


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
    """Scores rows [offset, offset + rows) and stores them, with `score`, `is_anomaly`, `percentile` and `imputed`,
    as a scratch file."""
    payload = ctx.payload
    top_k = payload.get("explain_top_k")
    ctx.progress(0, "loading data")
    with ctx.app.database.session() as session:
        detectors = DetectorService(session=session, scope=ctx.scope, app=ctx.app)
        _, _, model = detectors.load_model(detector_id=payload["detector_id"], version=payload["version"])
        frame = detectors.datasets.load_frame(
            dataset_id=payload["dataset_id"], offset=spec["offset"], length=spec["rows"]
        )
    ctx.progress(20, "explaining" if top_k else "scoring")
    chunk_rows = EXPLAIN_CHUNK_ROWS if top_k else SCORING_CHUNK_ROWS
    chunks, explained = [], []
    for start in range(0, max(frame.height, 1), chunk_rows):
        part = frame.slice(start, chunk_rows)
        try:
            chunks.append(model.score(part))
            if top_k:
                explained.extend(explain_frame(model, part).top(top_k))
        except ml.MLError as exc:
            raise ml_problem(exc) from exc
        ctx.progress(20 + 70 * min(1.0, (start + chunk_rows) / max(frame.height, 1)))
    ctx.progress(90, "saving the results")
    scores = np.concatenate(chunks) if chunks else np.empty(0)
    flags = scores > model.threshold
    # The same columns as an inline detection's answer: each score's percentile, and which rows were filled in.
    scored = frame.with_columns(pl.Series("score", scores), pl.Series("is_anomaly", flags))
    percentiles = model.percentiles(scores)
    if percentiles is not None:
        scored = scored.with_columns(pl.Series("percentile", percentiles))
    imputed = imputed_rows(frame, model.features)
    if imputed is not None:
        scored = scored.with_columns(imputed)
    if top_k:
        scored = scored.with_columns(explanation_columns(explained, top_k))
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

    # The file first, outside the transaction that records the job's end (on SQLite the one write lock: writing a
    # large table under it made every other writer wait); the row in that transaction; the file gone if it is not.
    with ctx.app.database.session() as session:
        written = DatasetService(session=session, scope=ctx.scope, app=ctx.app).put_table(scored)

    def store(session: Session) -> None:
        datasets = DatasetService(session=session, scope=ctx.scope, app=ctx.app)
        stored = datasets.record_table(
            written,
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

    return JobOutcome(result=result, apply=store, discard=lambda: ctx.app.blobs.delete(written.key, best_effort=True))
