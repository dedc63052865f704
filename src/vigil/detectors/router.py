"""Detector routes: the algorithm catalog, detector CRUD, training, model versions and detection."""

from __future__ import annotations

import io
import json
from typing import Annotated, Any

import anyio
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from vigil.core.errors import InvalidInput, UnsupportedMediaType
from vigil.core.pagination import Page
from vigil.datasets import formats
from vigil.detectors.schemas import (
    AlgorithmList,
    DetectionResult,
    DetectorCreate,
    DetectorPublic,
    DetectorUpdate,
    DetectRequest,
    ModelVersionPublic,
    TrainRequest,
)
from vigil.detectors.service import Detection, DetectorService, catalog
from vigil.identity.dependencies import require
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.jobs.schemas import JobPublic
from vigil.web.deps import ContextDep, SessionDep

router = APIRouter(tags=["detectors"])
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=200)]
PARQUET = "application/vnd.apache.parquet"
ARROW = "application/vnd.apache.arrow.stream"
_TABLE_FORMATS = {
    PARQUET: formats.FileFormat.PARQUET,
    "application/x-parquet": formats.FileFormat.PARQUET,
    ARROW: formats.FileFormat.ARROW,
    "application/vnd.apache.arrow.file": formats.FileFormat.ARROW,
}
_DETECT_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": DetectRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            },
            **{media: {"schema": {"type": "string", "format": "binary"}} for media in _TABLE_FORMATS},
        },
    }
}


def _service(session: SessionDep, principal: Principal, app: ContextDep) -> DetectorService:
    return DetectorService(session=session, scope=principal.scope, app=app)


@router.get("/algorithms", summary="The detector catalog with parameter schemas")
def list_algorithms(_: Annotated[Principal, require(Permission.ALGORITHMS_READ)]) -> AlgorithmList:
    return catalog()


@router.post("/detectors", status_code=status.HTTP_201_CREATED, summary="Create a detector")
def create_detector(
    data: DetectorCreate,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> DetectorPublic:
    return _service(session, principal, app).create(data=data, created_by=principal.user_id)


@router.get("/detectors", summary="List detectors, newest first")
def list_detectors(
    principal: Annotated[Principal, require(Permission.DETECTORS_READ)],
    session: SessionDep,
    app: ContextDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DetectorPublic]:
    items, next_cursor = _service(session, principal, app).list(limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/detectors/{detector_id}", summary="Get a detector")
def get_detector(
    detector_id: str,
    principal: Annotated[Principal, require(Permission.DETECTORS_READ)],
    session: SessionDep,
    app: ContextDep,
) -> DetectorPublic:
    return _service(session, principal, app).get(detector_id=detector_id)


@router.patch("/detectors/{detector_id}", summary="Change a detector (applies to the next training)")
def update_detector(
    detector_id: str,
    data: DetectorUpdate,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> DetectorPublic:
    return _service(session, principal, app).update(detector_id=detector_id, data=data)


@router.delete("/detectors/{detector_id}", status_code=204, summary="Delete a detector and its models")
def delete_detector(
    detector_id: str,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> Response:
    _service(session, principal, app).delete(detector_id=detector_id)
    return Response(status_code=204)


@router.post(
    "/detectors/{detector_id}/train",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Train a new model version",
)
def train_detector(
    detector_id: str,
    data: TrainRequest,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> JobPublic:
    return _service(session, principal, app).train(
        detector_id=detector_id, dataset_id=data.dataset_id, created_by=principal.user_id
    )


@router.get("/detectors/{detector_id}/versions", summary="A detector's model versions, newest first")
def list_versions(
    detector_id: str,
    principal: Annotated[Principal, require(Permission.DETECTORS_READ)],
    session: SessionDep,
    app: ContextDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ModelVersionPublic]:
    items, next_cursor = _service(session, principal, app).versions(detector_id=detector_id, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/detectors/{detector_id}/detect",
    summary="Score rows: inline records, a Parquet/Arrow body, or a stored dataset (as a job)",
    openapi_extra=_DETECT_DOC,
    response_model=DetectionResult,
    responses={
        202: {"model": JobPublic, "description": "A dataset is being scored by a job"},
        200: {
            "content": {PARQUET: {}, ARROW: {}},
            "description": "The scores (JSON, or Parquet/Arrow per Accept)",
        },
    },
)
async def detect(
    detector_id: str,
    request: Request,
    principal: Annotated[Principal, require(Permission.DETECT)],
    session: SessionDep,
    app: ContextDep,
    version: Annotated[int | None, Query(ge=1, description="A model version; the current one by default")] = None,
) -> Response:
    svc = _service(session, principal, app)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in _TABLE_FORMATS:
        body = await request.body()
        fmt = _TABLE_FORMATS[media_type]
        table = await anyio.to_thread.run_sync(lambda: formats.table_from_bytes(body, fmt, limits=svc.datasets.limits))
        result = await anyio.to_thread.run_sync(
            lambda: svc.detect_table(detector_id=detector_id, table=table, version=version)
        )
        return _detection_response(result, request.headers.get("accept", ""))
    if media_type != "application/json":
        raise UnsupportedMediaType(media_type or None, ["application/json", *_TABLE_FORMATS])
    try:
        data = DetectRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [{"loc": ["body", *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise InvalidInput("The detect request did not validate.", errors=errors) from exc
    wanted = data.version or version
    if data.dataset_id is not None:
        dataset_id = data.dataset_id
        job = await anyio.to_thread.run_sync(
            lambda: svc.detect_dataset(
                detector_id=detector_id, dataset_id=dataset_id, version=wanted, created_by=principal.user_id
            )
        )
        return JSONResponse(job.model_dump(mode="json"), status_code=202)
    records = data.records or []
    result = await anyio.to_thread.run_sync(
        lambda: svc.detect_records(detector_id=detector_id, records=records, version=wanted)
    )
    return _detection_response(result, request.headers.get("accept", ""))


def _detection_response(result: Detection, accept: str) -> Response:
    """JSON by default; Parquet or Arrow when asked, which is what bulk clients want for large batches."""
    if PARQUET in accept or ARROW in accept:
        table = pa.table(
            {
                "index": pa.array(range(len(result.scores)), pa.int64()),
                "score": result.scores,
                "is_anomaly": result.flags,
            }
        )
        sink = io.BytesIO()
        if PARQUET in accept:
            pq.write_table(table, sink)
            media = PARQUET
        else:
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            media = ARROW
        headers = {f"X-Vigil-{k.replace('_', '-').title()}": str(v) for k, v in result.summary().items()}
        return Response(sink.getvalue(), media_type=media, headers=headers)
    body = result.summary()
    scores, flags = result.scores.tolist(), result.flags.tolist()
    body["results"] = [
        {"index": i, "score": s, "is_anomaly": f} for i, (s, f) in enumerate(zip(scores, flags, strict=True))
    ]
    return Response(json.dumps(body, allow_nan=False), media_type="application/json")
