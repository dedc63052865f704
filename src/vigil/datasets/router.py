"""Dataset routes: upload (multipart or raw body), list, read, preview rows, rename/describe, delete — and the
data-science reports (profile, quality, analysis): make one, read it back as JSON or as an HTML page."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, Query, Request, Response, status
from fastapi.responses import FileResponse, HTMLResponse
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.requests import HTTPConnection

from vigil.core.bounds import MAX_ROW, MAX_VERSION
from vigil.core.errors import InvalidInput
from vigil.core.names import PRINTABLE_PATTERN, printable_name, printable_part
from vigil.core.pagination import Page
from vigil.datasets import exports, formats
from vigil.datasets.reports import ReportRequest, ReportService, ScorerProvider
from vigil.datasets.schemas import (
    AnalysisRequest,
    DatasetPublic,
    DatasetUpdate,
    ProfileRequest,
    QualityRequest,
    ReportKind,
    ReportPublic,
    ReportVersions,
    RowsPublic,
)
from vigil.datasets.service import DatasetService
from vigil.identity.dependencies import require
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.jobs.schemas import JobPublic
from vigil.web.created import CREATED, JOB, JOB_LOCATION, created
from vigil.web.deps import ContextDep, SessionDep
from vigil.web.endpoints import quick_read
from vigil.web.idempotency_applied import replay_created
from vigil.web.paging import Cursor, Limit
from vigil.web.routing import IndexedRouter

DATASET = "/api/v1/datasets/{id}"
router = IndexedRouter(prefix="/datasets", tags=["datasets"])
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A file as multipart `file` (with optional `name`, `description` fields), or the raw body.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "name": {"type": "string", "maxLength": 200},
                        "description": {"type": "string", "maxLength": 10000},
                    },
                }
            },
            **{media: {"schema": {"type": "string", "format": "binary"}} for media in formats.MEDIA_TYPES},
        },
    }
}


# A table every server accepts, as a starting point for clients (and for the contract fuzzer's chains of calls).
_UPLOAD_BODY["requestBody"]["content"]["text/csv"]["example"] = "x,y,label\n1.5,2,a\n0.5,4,b\n2.5,1,a\n"


def service(session: SessionDep, principal: Principal, app: ContextDep) -> DatasetService:
    return DatasetService(session=session, scope=principal.scope, app=app)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=CREATED,
    summary="Upload a dataset",
    openapi_extra=_UPLOAD_BODY,
)
async def upload_dataset(
    request: Request,
    principal: Annotated[Principal, require(Permission.DATASETS_WRITE)],
    session: SessionDep,
    app: ContextDep,
    name: Annotated[str | None, Query(max_length=200, pattern=PRINTABLE_PATTERN)] = None,
    # In the URL at most 2,000 characters (up to 24 KB percent-encoded, well inside the HTTP server's 80 KB request
    # head; 10,000 were refused there with a bare 400); the multipart field and PATCH take the full 10,000.
    description: Annotated[str | None, Query(max_length=2_000)] = None,
    *,
    response: Response,
) -> DatasetPublic:
    if name:  # refused before the body is read
        name = printable_name(name, loc=["query", "name"])
    replay_created("datasets", DATASET)
    svc = DatasetService(session=session, scope=principal.scope, app=app)
    staging = app.blobs.staging_path(principal.scope)
    try:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type == "multipart/form-data":
            fmt, filename, fields = await _receive_multipart(request, staging)
            if not name and fields.get("name"):
                name = printable_name(fields["name"], loc=["body", "name"])
            description = description or fields.get("description")
        else:
            fmt = formats.format_for(media_type=media_type or None, filename=None)
            filename = None
            await _receive_raw(request, staging)
        # A name given is held to the rule for names (above); one taken from a file's name is cleaned.
        dataset_name = name or printable_part(Path(filename).stem if filename else "") or "dataset"
        dataset = await anyio.to_thread.run_sync(
            lambda: svc.create_from_file(
                path=staging,
                fmt=fmt,
                name=dataset_name,
                description=description,
                created_by=principal.user_id,
            )
        )
        return created(response, DATASET, dataset)
    finally:
        staging.unlink(missing_ok=True)


async def _receive_raw(request: Request, target: Path) -> None:
    with target.open("wb") as fh:
        async for chunk in request.stream():
            fh.write(chunk)


async def _receive_multipart(request: Request, target: Path) -> tuple[formats.FileFormat, str | None, dict[str, str]]:
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput(
                "A multipart upload needs a 'file' part.",
                errors=[{"loc": ["body", "file"], "msg": "field required"}],
            )
        fields = {k: v for k, v in form.items() if isinstance(v, str) and k in ("name", "description")}
        fmt = formats.format_for(media_type=upload.content_type, filename=upload.filename)
        with target.open("wb") as fh:
            await anyio.to_thread.run_sync(shutil.copyfileobj, upload.file, fh)
        return fmt, upload.filename, fields


@router.get("", summary="List datasets, newest first")
@quick_read
def list_datasets(
    principal: Annotated[Principal, require(Permission.DATASETS_READ)],
    session: SessionDep,
    app: ContextDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DatasetPublic]:
    items, next_cursor = service(session, principal, app).list(limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{dataset_id}", summary="Get a dataset's metadata and schema")
def get_dataset(
    dataset_id: str,
    principal: Annotated[Principal, require(Permission.DATASETS_READ)],
    session: SessionDep,
    app: ContextDep,
) -> DatasetPublic:
    return service(session, principal, app).get(dataset_id=dataset_id)


@router.get("/{dataset_id}/rows", summary="Preview a dataset's rows")
def dataset_rows(
    dataset_id: str,
    principal: Annotated[Principal, require(Permission.DATASETS_READ)],
    session: SessionDep,
    app: ContextDep,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RowsPublic:
    return service(session, principal, app).rows(dataset_id=dataset_id, offset=offset, limit=limit)


@router.get(
    "/{dataset_id}/download",
    summary="Download a dataset as CSV, JSON records, Parquet or Arrow",
    response_class=FileResponse,
    responses={200: {"content": {media: {} for media in exports.MEDIA_TYPES.values()}}},
)
async def download_dataset(
    dataset_id: str,
    principal: Annotated[Principal, require(Permission.DATASETS_READ)],
    session: SessionDep,
    app: ContextDep,
    format: Annotated[formats.FileFormat, Query(description="The file format to send.")] = formats.FileFormat.PARQUET,
) -> FileResponse:
    svc = service(session, principal, app)
    path, filename = await anyio.to_thread.run_sync(lambda: svc.export(dataset_id=dataset_id, fmt=format))
    return FileResponse(
        path,
        media_type=exports.MEDIA_TYPES[format],
        filename=filename,
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


@router.patch("/{dataset_id}", summary="Rename or describe a dataset")
def update_dataset(
    dataset_id: str,
    data: DatasetUpdate,
    principal: Annotated[Principal, require(Permission.DATASETS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> DatasetPublic:
    return service(session, principal, app).update(dataset_id=dataset_id, data=data)


@router.delete("/{dataset_id}", status_code=204, summary="Delete a dataset and its stored file")
def delete_dataset(
    dataset_id: str,
    principal: Annotated[Principal, require(Permission.DATASETS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> Response:
    service(session, principal, app).delete(dataset_id=dataset_id)
    return Response(status_code=204)


# -- data-science reports: profile, quality, analysis ------------------------------------------------------------
_REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **CREATED,
    202: {
        "model": JobPublic,
        "description": "The dataset is large: a job makes the report (see `GET /jobs/{id}`)",
        **JOB_LOCATION,
    },
}
REPORT = "/api/v1/datasets/{dataset_id}/{kind}?version={version}"
Version = Annotated[
    int | None, Query(ge=1, le=MAX_VERSION, description="A report version; the latest ready one by default")
]


def get_scorers(connection: HTTPConnection) -> ScorerProvider | None:
    """The detectors' scorer, wired by the app (this domain cannot import the detectors one)."""
    provider: ScorerProvider | None = getattr(connection.app.state, "scorers", None)
    return provider


ScorersDep = Annotated[ScorerProvider | None, Depends(get_scorers)]


def report_service(session: SessionDep, principal: Principal, app: ContextDep, scorers: ScorersDep) -> ReportService:
    return ReportService(session=session, scope=principal.scope, app=app, scorers=scorers)


async def _create_report(
    svc: ReportService, dataset_id: str, kind: ReportKind, request: ReportRequest, principal: Principal
) -> Response:
    replay_created("jobs", JOB, status=202)
    replay_created("dataset_reports", REPORT)
    made = await anyio.to_thread.run_sync(
        lambda: svc.create(dataset_id=dataset_id, kind=kind, request=request, created_by=principal.user_id)
    )
    queued = isinstance(made, JobPublic)
    answer = Response(made.model_dump_json(), status_code=202 if queued else 201, media_type="application/json")
    created(answer, JOB if queued else REPORT, made)
    return answer


@router.post(
    "/{dataset_id}/profile",
    status_code=201,
    response_model=ReportPublic,
    responses=_REPORT_RESPONSES,
    summary="Profile a dataset: per-column statistics, histograms, correlations",
)
async def profile_dataset(
    dataset_id: str,
    principal: Annotated[Principal, require(Permission.DATASETS_WRITE)],
    session: SessionDep,
    app: ContextDep,
    scorers: ScorersDep,
    data: ProfileRequest | None = None,
) -> Response:
    svc = report_service(session, principal, app, scorers)
    return await _create_report(svc, dataset_id, "profile", data or ProfileRequest(), principal)


@router.post(
    "/{dataset_id}/quality",
    status_code=201,
    response_model=ReportPublic,
    responses=_REPORT_RESPONSES,
    summary="Assess a dataset's quality: scores per dimension, issues, recommendations",
)
async def assess_dataset(
    dataset_id: str,
    principal: Annotated[Principal, require(Permission.DATASETS_WRITE)],
    session: SessionDep,
    app: ContextDep,
    scorers: ScorersDep,
    data: QualityRequest | None = None,
) -> Response:
    svc = report_service(session, principal, app, scorers)
    return await _create_report(svc, dataset_id, "quality", data or QualityRequest(), principal)


@router.post(
    "/{dataset_id}/analysis",
    status_code=201,
    response_model=ReportPublic,
    responses=_REPORT_RESPONSES,
    summary="Analyse a dataset: distribution fits, normality, correlations, feature relevance",
)
async def analyse_dataset(
    dataset_id: str,
    principal: Annotated[Principal, require(Permission.DATASETS_WRITE)],
    session: SessionDep,
    app: ContextDep,
    scorers: ScorersDep,
    data: AnalysisRequest | None = None,
) -> Response:
    svc = report_service(session, principal, app, scorers)
    return await _create_report(svc, dataset_id, "analysis", data or AnalysisRequest(), principal)


def _report_routes(kind: ReportKind) -> None:
    def read(
        dataset_id: str,
        principal: Annotated[Principal, require(Permission.DATASETS_READ)],
        session: SessionDep,
        app: ContextDep,
        version: Version = None,
    ) -> ReportPublic:
        return ReportService(session=session, scope=principal.scope, app=app).get(
            dataset_id=dataset_id, kind=kind, version=version
        )

    def versions(
        dataset_id: str,
        principal: Annotated[Principal, require(Permission.DATASETS_READ)],
        session: SessionDep,
        app: ContextDep,
    ) -> ReportVersions:
        svc = ReportService(session=session, scope=principal.scope, app=app)
        return ReportVersions(items=svc.versions(dataset_id=dataset_id, kind=kind))

    async def page(
        dataset_id: str,
        principal: Annotated[Principal, require(Permission.DATASETS_READ)],
        session: SessionDep,
        app: ContextDep,
        version: Version = None,
    ) -> HTMLResponse:
        svc = ReportService(session=session, scope=principal.scope, app=app)
        text = await anyio.to_thread.run_sync(lambda: svc.html(dataset_id=dataset_id, kind=kind, version=version))
        return HTMLResponse(text, headers={"Content-Security-Policy": REPORT_PAGE_CSP})

    router.add_api_route(
        f"/{{dataset_id}}/{kind}", read, methods=["GET"], name=f"get_{kind}_report", summary=f"The {kind} report"
    )
    router.add_api_route(
        f"/{{dataset_id}}/{kind}/versions",
        versions,
        methods=["GET"],
        name=f"list_{kind}_report_versions",
        summary=f"The {kind} report's versions, newest first",
    )
    router.add_api_route(
        f"/{{dataset_id}}/{kind}.html",
        page,
        methods=["GET"],
        name=f"get_{kind}_report_page",
        summary=f"The {kind} report as a self-contained HTML page",
        response_class=HTMLResponse,
    )


REPORT_PAGE_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"
for _kind in ("profile", "quality", "analysis"):
    _report_routes(_kind)
