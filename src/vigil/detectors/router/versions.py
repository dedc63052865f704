"""Model version routes: list, inspect, delete, promote, roll back, compare, and move a version between
installations as a signed export."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Query, Request, Response, status

from vigil.core.bounds import MAX_VERSION
from vigil.core.errors import UnsupportedMediaType
from vigil.core.pagination import Page
from vigil.detectors.schemas import CompareRequest, DetectorPublic, ModelVersionPublic, SigningKey, VersionComparison
from vigil.detectors.service import DetectorService
from vigil.detectors.versions import VersionService
from vigil.identity.dependencies import require
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.web.created import CREATED, created
from vigil.web.deps import ContextDep, SessionDep
from vigil.web.endpoints import quick_read
from vigil.web.idempotency_applied import replay_created, replay_from
from vigil.web.paging import Cursor, Limit

VERSION = "/api/v1/detectors/{detector_id}/versions/{version}"
router = APIRouter(tags=["detectors"])
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION)]
ExportBody: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _versions(session: SessionDep, principal: Principal, app: ContextDep) -> VersionService:
    return VersionService(session=session, scope=principal.scope, app=app)


@router.get("/detectors/{detector_id}/versions", summary="A detector's model versions, newest first")
@quick_read
def list_versions(
    detector_id: str,
    principal: Annotated[Principal, require(Permission.DETECTORS_READ)],
    session: SessionDep,
    app: ContextDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ModelVersionPublic]:
    svc = DetectorService(session=session, scope=principal.scope, app=app)
    items, next_cursor = svc.versions(detector_id=detector_id, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/detectors/{detector_id}/versions/{version}", summary="One model version, with its quality")
def get_version(
    detector_id: str,
    version: VersionNumber,
    principal: Annotated[Principal, require(Permission.DETECTORS_READ)],
    session: SessionDep,
    app: ContextDep,
) -> ModelVersionPublic:
    return _versions(session, principal, app).get(detector_id=detector_id, version=version)


@router.delete("/detectors/{detector_id}/versions/{version}", status_code=204, summary="Delete an inactive version")
def delete_version(
    detector_id: str,
    version: VersionNumber,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> Response:
    _versions(session, principal, app).delete(detector_id=detector_id, version=version)
    return Response(status_code=204)


@router.post("/detectors/{detector_id}/versions/{version}/promote", summary="Make a version the active one")
def promote_version(
    detector_id: str,
    version: VersionNumber,
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
    version: VersionNumber,
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
    responses=CREATED,
    summary="A new version from a signed export (this installation's, or one signed by a trusted key)",
    openapi_extra=ExportBody,
)
async def import_version(
    detector_id: str,
    request: Request,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
    response: Response,
    promote: Annotated[bool, Query(description="Make the imported version the active one")] = False,
) -> ModelVersionPublic:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/octet-stream":
        raise UnsupportedMediaType(media_type or None, ["application/octet-stream"])
    body = await request.body()
    replay_created("model_versions", VERSION)
    svc = _versions(session, principal, app)
    imported = await anyio.to_thread.run_sync(lambda: svc.import_(detector_id=detector_id, data=body, promote=promote))
    return created(response, VERSION, imported, detector_id=detector_id)


@router.get("/model-signing-key", summary="This installation's public key for model exports")
def signing_key(
    principal: Annotated[Principal, require(Permission.DETECTORS_READ)], session: SessionDep, app: ContextDep
) -> SigningKey:
    return _versions(session, principal, app).signing_key()
