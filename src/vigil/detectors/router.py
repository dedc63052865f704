"""Detector routes: the algorithm catalog, detector CRUD, training, model versions and detection."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from vigil.core.bounds import MAX_VERSION
from vigil.core.errors import InvalidInput, UnsupportedMediaType
from vigil.core.pagination import Page
from vigil.core.timing import HEADER as SERVER_TIMING
from vigil.core.timing import PhaseTimer
from vigil.datasets import formats
from vigil.detectors import results
from vigil.detectors.detection import DetectionService
from vigil.detectors.feedback import FeedbackService
from vigil.detectors.results import Detection
from vigil.detectors.schemas import (
    MAX_INLINE_RECORDS,
    AlgorithmList,
    CompareRequest,
    DetectionResult,
    DetectorCreate,
    DetectorPublic,
    DetectorUpdate,
    DetectRequest,
    FeedbackCreate,
    FeedbackDeleted,
    FeedbackLabelPublic,
    FeedbackSummary,
    ModelVersionPublic,
    SigningKey,
    TrainRequest,
    VersionComparison,
)
from vigil.detectors.service import DetectorService, catalog
from vigil.detectors.versions import VersionService
from vigil.identity.dependencies import require
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.jobs.schemas import JobPublic
from vigil.web.deps import ContextDep, SessionDep
from vigil.web.idempotency_applied import replay_created, replay_from

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
TABLE_MEDIA_TYPES = frozenset(_TABLE_FORMATS)  # detect reads these as tables; nothing else but JSON
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


def _versions(session: SessionDep, principal: Principal, app: ContextDep) -> VersionService:
    return VersionService(session=session, scope=principal.scope, app=app)


def _feedback(session: SessionDep, principal: Principal, app: ContextDep) -> FeedbackService:
    return FeedbackService(session=session, scope=principal.scope, app=app)


ExportBody: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
ExplainTopK = Annotated[
    int | None,
    Query(ge=1, le=50, description="Explain each row: its top-k features (Parquet/Arrow bodies; JSON uses `explain`)"),
]


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
    replay_created("detectors", "/api/v1/detectors/{id}")
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
    replay_created("jobs", "/api/v1/jobs/{id}", status=202)
    return _service(session, principal, app).train(
        detector_id=detector_id, dataset_id=data.dataset_id, created_by=principal.user_id, promote=data.promote
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


@router.get("/detectors/{detector_id}/versions/{version}", summary="One model version, with its quality")
def get_version(
    detector_id: str,
    version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
    principal: Annotated[Principal, require(Permission.DETECTORS_READ)],
    session: SessionDep,
    app: ContextDep,
) -> ModelVersionPublic:
    return _versions(session, principal, app).get(detector_id=detector_id, version=version)


@router.delete("/detectors/{detector_id}/versions/{version}", status_code=204, summary="Delete an inactive version")
def delete_version(
    detector_id: str,
    version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> Response:
    _versions(session, principal, app).delete(detector_id=detector_id, version=version)
    return Response(status_code=204)


@router.post("/detectors/{detector_id}/versions/{version}/promote", summary="Make a version the active one")
def promote_version(
    detector_id: str,
    version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> DetectorPublic:
    replay_from(f"/api/v1/detectors/{detector_id}")
    return _versions(session, principal, app).promote(detector_id=detector_id, version=version)


@router.post("/detectors/{detector_id}/rollback", summary="Make the previously active version active again")
def rollback(
    detector_id: str,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> DetectorPublic:
    replay_from(f"/api/v1/detectors/{detector_id}")
    return _versions(session, principal, app).rollback(detector_id=detector_id)


@router.post("/detectors/{detector_id}/versions/compare", summary="Compare two versions on a dataset")
def compare_versions(
    detector_id: str,
    data: CompareRequest,
    principal: Annotated[Principal, require(Permission.DETECTORS_READ)],
    session: SessionDep,
    app: ContextDep,
) -> VersionComparison:
    return _versions(session, principal, app).compare(
        detector_id=detector_id, a=data.a, b=data.b, dataset_id=data.dataset_id
    )


@router.get(
    "/detectors/{detector_id}/versions/{version}/export",
    summary="A version as a signed export (Ed25519), for another tenant or installation",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The signed export"}},
)
def export_version(
    detector_id: str,
    version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> Response:
    data, filename = _versions(session, principal, app).export(detector_id=detector_id, version=version)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/detectors/{detector_id}/versions/import",
    status_code=status.HTTP_201_CREATED,
    summary="A new version from a signed export (this installation's, or one signed by a trusted key)",
    openapi_extra=ExportBody,
)
async def import_version(
    detector_id: str,
    request: Request,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
    promote: Annotated[bool, Query(description="Make the imported version the active one")] = False,
) -> ModelVersionPublic:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/octet-stream":
        raise UnsupportedMediaType(media_type or None, ["application/octet-stream"])
    body = await request.body()
    replay_created("model_versions", "/api/v1/detectors/{detector_id}/versions/{version}")
    svc = _versions(session, principal, app)
    return await anyio.to_thread.run_sync(lambda: svc.import_(detector_id=detector_id, data=body, promote=promote))


@router.get("/model-signing-key", summary="This installation's public key for model exports")
def signing_key(
    principal: Annotated[Principal, require(Permission.DETECTORS_READ)], session: SessionDep, app: ContextDep
) -> SigningKey:
    return _versions(session, principal, app).signing_key()


@router.post(
    "/detectors/{detector_id}/feedback",
    status_code=status.HTTP_201_CREATED,
    summary="Label rows of a dataset as anomaly or normal (by index, or a label column)",
)
def add_feedback(
    detector_id: str,
    data: FeedbackCreate,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> FeedbackSummary:
    return _feedback(session, principal, app).add(detector_id=detector_id, data=data, created_by=principal.user_id)


@router.get("/detectors/{detector_id}/feedback", summary="A detector's feedback labels, newest first")
def list_feedback(
    detector_id: str,
    principal: Annotated[Principal, require(Permission.DETECTORS_READ)],
    session: SessionDep,
    app: ContextDep,
    dataset_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[FeedbackLabelPublic]:
    items, next_cursor = _feedback(session, principal, app).list(
        detector_id=detector_id, dataset_id=dataset_id, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.delete("/detectors/{detector_id}/feedback/{label_id}", status_code=204, summary="Delete one label")
def delete_feedback(
    detector_id: str,
    label_id: str,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> Response:
    _feedback(session, principal, app).delete(detector_id=detector_id, label_id=label_id)
    return Response(status_code=204)


@router.delete("/detectors/{detector_id}/feedback", summary="Delete every label of one dataset")
def delete_dataset_feedback(
    detector_id: str,
    dataset_id: Annotated[str, Query(min_length=1, max_length=64)],
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> FeedbackDeleted:
    return _feedback(session, principal, app).delete_for_dataset(detector_id=detector_id, dataset_id=dataset_id)


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
            "headers": {
                SERVER_TIMING: {
                    "description": "Where the server's time went, in ms (W3C Server Timing): parse, model, "
                    "convert, score, encode",
                    "schema": {"type": "string"},
                }
            },
        },
    },
)
async def detect(
    detector_id: str,
    request: Request,
    principal: Annotated[Principal, require(Permission.DETECT)],
    session: SessionDep,
    app: ContextDep,
    version: Annotated[
        int | None, Query(ge=1, le=MAX_VERSION, description="A model version; the current one by default")
    ] = None,
    explain: ExplainTopK = None,
) -> Response:
    # All the request's work after reading its body — parse, load the model, score, encode — runs in one worker
    # thread, under the app's scoring limit: a few CPU-bound scorings at once, the rest waiting without a thread (so
    # the event loop is not starved of the GIL by a crowd of them). `Server-Timing` says where the time went.
    replay_created("jobs", "/api/v1/jobs/{id}", status=202)  # a dataset scored by a job; inline scoring writes nothing
    svc = DetectionService(session=session, scope=principal.scope, app=app)
    timer = PhaseTimer()
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    accept = request.headers.get("accept", "")
    if media_type not in _TABLE_FORMATS and media_type != "application/json":
        raise UnsupportedMediaType(media_type or None, ["application/json", *_TABLE_FORMATS])
    body = await request.body()

    def work() -> Response:
        if media_type in _TABLE_FORMATS:
            with timer.phase("parse"):
                table = formats.table_from_bytes(body, _TABLE_FORMATS[media_type], limits=svc.datasets.inline_limits())
            result = svc.detect_table(
                detector_id=detector_id, table=table, version=version, explain_top_k=explain, timer=timer
            )
            return _detection_response(result, accept, timer)
        with timer.phase("parse"):
            data = _detect_request(body)
        wanted = data.version or version
        top_k = data.explain.top_k if data.explain is not None else explain
        if data.dataset_id is not None:
            job = svc.detect_dataset(
                detector_id=detector_id,
                dataset_id=data.dataset_id,
                version=wanted,
                created_by=principal.user_id,
                explain_top_k=top_k,
            )
            return JSONResponse(job.model_dump(mode="json"), status_code=202)
        result = svc.detect_records(
            detector_id=detector_id, records=data.records or [], version=wanted, explain_top_k=top_k, timer=timer
        )
        return _detection_response(result, accept, timer)

    response = await anyio.to_thread.run_sync(work, limiter=getattr(request.app.state, "scoring", None))
    response.headers[SERVER_TIMING] = timer.header()
    return response


def _detect_request(body: bytes) -> DetectRequest:
    """The request body, parsed fast when it is the common shape (`records`, optionally `version`); anything else
    is left to the schema, which explains exactly what is wrong."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if type(parsed) is dict and "records" in parsed and parsed.keys() <= {"records", "version"}:
        records, version = parsed["records"], parsed.get("version")
        if (
            type(records) is list
            and 1 <= len(records) <= MAX_INLINE_RECORDS
            and all(type(r) is dict for r in records)
            and (version is None or (type(version) is int and 1 <= version <= MAX_VERSION))
        ):
            return DetectRequest.model_construct(records=records, version=version, dataset_id=None, explain=None)
    try:
        return DetectRequest.model_validate_json(body)
    except ValidationError as exc:
        errors = [{"loc": ["body", *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise InvalidInput("The detect request did not validate.", errors=errors) from exc


def _detection_response(result: Detection, accept: str, timer: PhaseTimer) -> Response:
    """JSON by default; Parquet or Arrow when asked, which is what bulk clients want for large batches."""
    with timer.phase("encode"):
        return _encoded(result, accept)


def _encoded(result: Detection, accept: str) -> Response:
    if PARQUET in accept or ARROW in accept:
        body, media = (
            (results.parquet_bytes(result), PARQUET) if PARQUET in accept else (results.arrow_bytes(result), ARROW)
        )
        headers = {f"X-Vigil-{k.replace('_', '-').title()}": str(v) for k, v in result.summary().items()}
        return Response(body, media_type=media, headers=headers)
    return Response(results.json_bytes(result), media_type="application/json")
