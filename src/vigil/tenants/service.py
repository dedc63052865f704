"""Tenant use cases: the superadmin's management of tenants, a tenant admin's own settings and security, and what
spans every domain — the usage of each quota and the export. Tenants are identity's rows, so this talks to identity
(and to the datasets, detectors and jobs domains) through their services."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from vigil.core.clientinfo import ClientInfo
from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.core.errors import NotFound
from vigil.datasets.service import DatasetService
from vigil.detectors.feedback import FeedbackService
from vigil.detectors.service import DetectorService
from vigil.identity.principal import Principal
from vigil.identity.quotas import QUOTAS
from vigil.identity.ratelimit import RateLimiter
from vigil.identity.tenant_service import OwnTenant, TenantDirectory, TenantView, api_calls_this_hour, security_maxima
from vigil.jobs.service import JobService
from vigil.streams.service import StreamService
from vigil.tenants.export import build_export, stream_then_delete
from vigil.tenants.schemas import (
    QuotaUse,
    TenantConfigPublic,
    TenantConfigUpdate,
    TenantCreate,
    TenantPublic,
    TenantSecurityPublic,
    TenantSecurityUpdate,
    TenantUpdate,
    TenantUsagePublic,
)


def tenant_public(tenant: TenantView) -> TenantPublic:
    return TenantPublic(
        id=tenant.id,
        name=tenant.name,
        status=tenant.status,
        quotas=tenant.policy.quotas,
        config=config_public(tenant),
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
    )


def config_public(tenant: TenantView) -> TenantConfigPublic:
    policy = tenant.policy
    return TenantConfigPublic(
        default_contamination=policy.default_contamination,
        allowed_algorithms=policy.allowed_algorithms,
        retention_days=policy.retention_days,
        max_upload_bytes=policy.max_upload_bytes,
        trusted_model_keys=policy.trusted_model_keys,
    )


def _changes(section: BaseModel | None) -> dict[str, Any] | None:
    """The fields a request set (a null restores the default), or None when it left the whole section out."""
    return section.model_dump(exclude_unset=True) if section is not None else None


def check_access(principal: Principal, tenant_id: str) -> None:
    """A tenant admin acts on their own tenant only; any other id is unknown to them (404, not 403)."""
    if not principal.is_superadmin and tenant_id != principal.tenant_id:
        raise NotFound("tenant", tenant_id)


class TenantService:
    """The superadmin's view of the platform's tenants."""

    def __init__(self, *, session: Session, app: AppContext, principal: Principal, client: ClientInfo) -> None:
        self.directory = TenantDirectory(session=session, settings=app.settings)
        self.app = app
        self.principal = principal
        self.client = client

    def create(self, *, data: TenantCreate) -> TenantPublic:
        tenant = self.directory.create(
            name=data.name,
            quotas=_changes(data.quotas),
            config=_changes(data.config),
            principal=self.principal,
            client=self.client,
        )
        return tenant_public(tenant)

    def list(self, *, limit: int, cursor: str | None) -> tuple[builtins.list[TenantPublic], str | None]:
        items, next_cursor = self.directory.list(limit=limit, cursor=cursor)
        return [tenant_public(t) for t in items], next_cursor

    def get(self, *, tenant_id: str) -> TenantPublic:
        return tenant_public(self.directory.get(tenant_id=tenant_id))

    def update(self, *, tenant_id: str, data: TenantUpdate) -> TenantPublic:
        tenant = self.directory.update(
            tenant_id=tenant_id,
            name=data.name,
            status=data.status,
            quotas=_changes(data.quotas),
            config=_changes(data.config),
            principal=self.principal,
            client=self.client,
        )
        return tenant_public(tenant)

    def delete(self, *, tenant_id: str) -> None:
        self.directory.delete(tenant_id=tenant_id, principal=self.principal, client=self.client)
        # The rows are gone first: a crash now leaves orphan files, never rows pointing at nothing.
        self.app.blobs.delete_prefix(self.app.blobs.key(TenantScope(tenant_id)), best_effort=True)


class TenantSettingsService:
    """A tenant admin's configuration of their own tenant (`/tenant/settings`, `/tenant/security`)."""

    def __init__(self, *, session: Session, app: AppContext, principal: Principal, client: ClientInfo) -> None:
        self.own = OwnTenant(session=session, principal=principal, settings=app.settings, client=client)
        self.app = app

    def get(self) -> TenantConfigPublic:
        return config_public(self.own.get())

    def update(self, *, data: TenantConfigUpdate) -> TenantConfigPublic:
        return config_public(self.own.configure(changes=data.model_dump(exclude_unset=True)))

    def security(self) -> TenantSecurityPublic:
        return self._security_public(self.own.get())

    def update_security(self, *, data: TenantSecurityUpdate) -> TenantSecurityPublic:
        return self._security_public(self.own.secure(changes=data.model_dump(exclude_unset=True)))

    def _security_public(self, tenant: TenantView) -> TenantSecurityPublic:
        return TenantSecurityPublic(
            session_idle_timeout_s=tenant.security.session_idle_timeout_s,
            session_lifetime_s=tenant.security.session_lifetime_s,
            access_token_ttl_s=tenant.security.access_token_ttl_s,
            platform_maximum=security_maxima(self.app.settings),
        )


class ExportService:
    def __init__(self, *, session: Session, principal: Principal, app: AppContext) -> None:
        self.session = session
        self.principal = principal
        self.app = app

    def export(self, *, tenant_id: str) -> Iterator[bytes]:
        check_access(self.principal, tenant_id)
        tenant = TenantDirectory(session=self.session, settings=self.app.settings).get(tenant_id=tenant_id)
        return stream_then_delete(build_export(self.session, self.app, tenant_public(tenant)))


class UsageService:
    def __init__(self, *, session: Session, principal: Principal, app: AppContext, limiter: RateLimiter) -> None:
        self.session = session
        self.principal = principal
        self.app = app
        self.limiter = limiter

    def usage(self, *, tenant_id: str) -> TenantUsagePublic:
        check_access(self.principal, tenant_id)
        policy = TenantDirectory(session=self.session, settings=self.app.settings).policy(tenant_id=tenant_id)
        scope = TenantScope(tenant_id)
        stored = DatasetService(session=self.session, scope=scope, app=self.app).usage()
        streams = StreamService(session=self.session, scope=scope, app=self.app, limiter=self.limiter)
        used = {
            "datasets": stored.datasets,
            "storage_bytes": stored.storage_bytes,
            "rows_per_dataset": stored.largest_rows,
            "detectors": DetectorService(session=self.session, scope=scope, app=self.app).count(),
            "concurrent_jobs": JobService(session=self.session, scope=scope, app=self.app).count_running(),
            "api_calls_per_hour": api_calls_this_hour(
                self.limiter, tenant_id=tenant_id, limit=policy.quotas["api_calls_per_hour"]
            ),
            "feedback_labels": FeedbackService(session=self.session, scope=scope, app=self.app).count(),
            "streams": streams.count(),
            "stream_events_per_second": streams.events_this_second(limit=policy.quotas["stream_events_per_second"]),
        }
        return TenantUsagePublic(
            tenant_id=tenant_id,
            usage={name: QuotaUse(used=used[name], limit=policy.quotas[name]) for name in QUOTAS},
        )
