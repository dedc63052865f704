"""Tenant routes: the superadmin's management (create, list, change, suspend, resume, delete), the tenant admin's
configuration (`/tenant/settings`), and what spans domains — `GET /tenants/{id}/usage` and `/export`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Response, status
from fastapi.responses import StreamingResponse

from vigil.core.pagination import Page
from vigil.identity.dependencies import ClientDep, IdentityDep, require
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.tenants.schemas import (
    TenantConfigPublic,
    TenantConfigUpdate,
    TenantCreate,
    TenantPublic,
    TenantSecurityPublic,
    TenantSecurityUpdate,
    TenantUpdate,
    TenantUsagePublic,
)
from vigil.tenants.service import ExportService, TenantService, TenantSettingsService, UsageService
from vigil.web.created import CREATED, created
from vigil.web.deps import ContextDep, SessionDep
from vigil.web.endpoints import blocking
from vigil.web.idempotency_applied import replay_created, replay_from
from vigil.web.paging import Cursor, Limit
from vigil.web.routing import IndexedRouter

TENANT = "/api/v1/tenants/{id}"
router = IndexedRouter()
Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def tenant_management(
    principal: Annotated[Principal, require(Permission.TENANTS_MANAGE)],
    session: SessionDep,
    app: ContextDep,
    client: ClientDep,
) -> TenantService:
    """The superadmin's tenant use cases; routes that take it declare `tenants:manage` through it."""
    return TenantService(session=session, app=app, principal=principal, client=client)


def tenant_configuration(
    principal: Annotated[Principal, require(Permission.TENANT_SETTINGS_MANAGE)],
    session: SessionDep,
    app: ContextDep,
    client: ClientDep,
) -> TenantSettingsService:
    """A tenant admin's configuration of their own tenant (`tenant-settings:manage`)."""
    return TenantSettingsService(session=session, app=app, principal=principal, client=client)


TenantManagement = Annotated[TenantService, Depends(tenant_management)]
TenantConfiguration = Annotated[TenantSettingsService, Depends(tenant_configuration)]


@router.post(
    "/tenants", tags=["tenants"], status_code=status.HTTP_201_CREATED, responses=CREATED, summary="Create a tenant"
)
def create_tenant(data: TenantCreate, tenants: TenantManagement, response: Response) -> TenantPublic:
    replay_created("tenants", TENANT)
    return created(response, TENANT, tenants.create(data=data))


@router.get("/tenants", tags=["tenants"], summary="List tenants")
@blocking
def list_tenants(
    tenants: TenantManagement,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TenantPublic]:
    items, next_cursor = tenants.list(limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/tenants/{tenant_id}", tags=["tenants"], summary="Get a tenant")
def get_tenant(
    tenant_id: Id,
    tenants: TenantManagement,
) -> TenantPublic:
    return tenants.get(tenant_id=tenant_id)


@router.patch("/tenants/{tenant_id}", tags=["tenants"], summary="Rename, suspend or resume a tenant")
def update_tenant(
    tenant_id: Id,
    data: TenantUpdate,
    tenants: TenantManagement,
) -> TenantPublic:
    return tenants.update(tenant_id=tenant_id, data=data)


@router.post("/tenants/{tenant_id}/suspend", tags=["tenants"], summary="Suspend a tenant: its tokens and keys stop")
def suspend_tenant(
    tenant_id: Id,
    tenants: TenantManagement,
) -> TenantPublic:
    replay_from(f"/api/v1/tenants/{tenant_id}")
    return tenants.update(tenant_id=tenant_id, data=TenantUpdate(status="suspended"))


@router.post("/tenants/{tenant_id}/resume", tags=["tenants"], summary="Resume a suspended tenant")
def resume_tenant(
    tenant_id: Id,
    tenants: TenantManagement,
) -> TenantPublic:
    replay_from(f"/api/v1/tenants/{tenant_id}")
    return tenants.update(tenant_id=tenant_id, data=TenantUpdate(status="active"))


@router.get("/tenant/settings", tags=["tenant settings"], summary="The tenant's configuration")
def get_tenant_settings(
    configuration: TenantConfiguration,
) -> TenantConfigPublic:
    return configuration.get()


@router.patch(
    "/tenant/settings",
    tags=["tenant settings"],
    summary="Change the tenant's default contamination, allowed algorithms, retention or upload limit",
)
def update_tenant_settings(
    data: TenantConfigUpdate,
    configuration: TenantConfiguration,
) -> TenantConfigPublic:
    return configuration.update(data=data)


@router.get("/tenant/security", tags=["tenant settings"], summary="The tenant's session and token lifetimes")
def get_tenant_security(configuration: TenantConfiguration) -> TenantSecurityPublic:
    return configuration.security()


@router.patch(
    "/tenant/security",
    tags=["tenant settings"],
    summary="Tighten the tenant's session and token lifetimes (new sessions; null restores the server's)",
)
def update_tenant_security(data: TenantSecurityUpdate, configuration: TenantConfiguration) -> TenantSecurityPublic:
    return configuration.update_security(data=data)


@router.delete("/tenants/{tenant_id}", tags=["tenants"], status_code=204, summary="Delete a tenant and all its data")
def delete_tenant(
    tenant_id: Id,
    tenants: TenantManagement,
) -> Response:
    tenants.delete(tenant_id=tenant_id)
    return Response(status_code=204)


@router.get("/tenants/{tenant_id}/usage", tags=["tenants"], summary="The tenant's use of each quota, with its limit")
def get_tenant_usage(
    tenant_id: Id,
    principal: Annotated[Principal, require(Permission.TENANT_SETTINGS_MANAGE)],
    session: SessionDep,
    app: ContextDep,
    identity: IdentityDep,
) -> TenantUsagePublic:
    return UsageService(session=session, principal=principal, app=app, limiter=identity.limiter).usage(
        tenant_id=tenant_id
    )


@router.get(
    "/tenants/{tenant_id}/export",
    tags=["tenants"],
    summary="The tenant's data as a zip: datasets as Parquet, metadata of datasets, detectors, versions and users",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def export_tenant(
    tenant_id: Id,
    principal: Annotated[Principal, require(Permission.TENANT_SETTINGS_MANAGE)],
    session: SessionDep,
    app: ContextDep,
) -> StreamingResponse:
    chunks = ExportService(session=session, principal=principal, app=app).export(tenant_id=tenant_id)
    return StreamingResponse(
        chunks,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="vigil-tenant-{tenant_id}.zip"'},
    )
