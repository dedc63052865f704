"""The detection route: score inline records, a Parquet/Arrow body, or a stored dataset (as a job), and encode the
result as JSON, Parquet or Arrow."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from vigil.core.bounds import MAX_VERSION
from vigil.core.errors import InvalidInput, UnsupportedMediaType
from vigil.core.timing import HEADER as SERVER_TIMING
from vigil.core.timing import PhaseTimer
from vigil.datasets import formats
from vigil.detectors import results
from vigil.detectors.detection import DetectionService
from vigil.detectors.results import Detection
from vigil.detectors.schemas import MAX_INLINE_RECORDS, DetectionResult, DetectRequest
from vigil.identity.dependencies import require
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.jobs.schemas import JobPublic
from vigil.web.created import JOB, JOB_LOCATION, created
from vigil.web.deps import ContextDep, SessionDep
from vigil.web.idempotency_applied import replay_created

router = APIRouter(tags=["detectors"])
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
ExplainTopK = Annotated[
    int | None,
    Query(ge=1, le=50, description="Explain each row: its top-k features (Parquet/Arrow bodies; JSON uses `explain`)"),
]


@router.post(
    "/detectors/{detector_id}/detect",
    summary="Score rows: inline records, a Parquet/Arrow body, or a stored dataset (as a job)",
    openapi_extra=_DETECT_DOC,
    response_model=DetectionResult,
    responses={
        202: {"model": JobPublic, "description": "A dataset is being scored by a job", **JOB_LOCATION},
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
    replay_created("jobs", JOB, status=202)  # a dataset scored by a job; inline scoring writes nothing
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
            accepted = JSONResponse(job.model_dump(mode="json"), status_code=202)
            created(accepted, JOB, job)
            return accepted
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
