"""Tenants: the superadmin's management (create, settings and quotas, suspend, resume, delete) and the tenant
admin's own configuration (default contamination, allowed algorithms, retention, upload size)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.core.blobs import BlobStore
from vigil.core.clientinfo import ClientInfo
from vigil.core.database import TenantScope
from vigil.core.errors import Conflict, InvalidInput, NotFound
from vigil.core.ids import new_id
from vigil.core.pagination import decode_cursor, page_of
from vigil.identity import audit
from vigil.identity.auth_service import SecurityPolicy
from vigil.identity.models import Tenant
from vigil.identity.principal import Principal
from vigil.identity.quotas import TenantPolicy
from vigil.identity.repository import PlatformRepository
from vigil.identity.schemas import (
    TenantConfigPublic,
    TenantConfigUpdate,
    TenantCreate,
    TenantPublic,
    TenantQuotas,
    TenantSecurityPublic,
    TenantSecurityUpdate,
    TenantUpdate,
)


def tenant_public(tenant: Tenant, settings: Settings) -> TenantPublic:
    policy = TenantPolicy.of(tenant, settings)
    return TenantPublic(
        id=tenant.id,
        name=tenant.name,
        status=tenant.status,
        quotas=policy.quotas,
        config=config_public(policy),
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
    )


def config_public(policy: TenantPolicy) -> TenantConfigPublic:
    return TenantConfigPublic(
        default_contamination=policy.default_contamination,
        allowed_algorithms=policy.allowed_algorithms,
        retention_days=policy.retention_days,
        max_upload_bytes=policy.max_upload_bytes,
        trusted_model_keys=policy.trusted_model_keys,
    )


def _merged(stored: dict[str, Any], section: str, changes: dict[str, Any]) -> dict[str, Any]:
    """The tenant's settings with `changes` applied to `section`; a null value restores the default."""
    merged = {**stored.get(section, {}), **changes}
    return {**stored, section: {k: v for k, v in merged.items() if v is not None}}


def apply_config(tenant: Tenant, data: TenantConfigUpdate, settings: Settings) -> dict[str, Any]:
    changes = data.model_dump(exclude_unset=True)
    limit = changes.get("max_upload_bytes")
    if limit is not None and limit > settings.max_upload_bytes:
        raise InvalidInput(
            "A tenant's upload limit cannot exceed the server's.",
            errors=[{"loc": ["body", "max_upload_bytes"], "msg": f"must be at most {settings.max_upload_bytes}"}],
        )
    tenant.settings = _merged(tenant.settings or {}, "config", changes)
    return changes


def apply_quotas(tenant: Tenant, data: TenantQuotas) -> dict[str, Any]:
    changes = data.model_dump(exclude_unset=True)
    tenant.settings = _merged(tenant.settings or {}, "quotas", changes)
    return changes


class TenantService:
    """Superadmin's view of the platform's tenants."""

    def __init__(
        self, *, session: Session, blobs: BlobStore, principal: Principal, client: ClientInfo, settings: Settings
    ) -> None:
        self.session = session
        self.platform = PlatformRepository(session=session)
        self.blobs = blobs
        self.principal = principal
        self.client = client
        self.settings = settings

    def _audit(self, action: str, tenant_id: str, **details: object) -> None:
        # Kept with the superadmin's own tenant: a deleted tenant's events go with it, this one must not.
        audit.record(
            self.session,
            action=action,
            tenant_id=self.principal.tenant_id,
            principal=self.principal,
            client=self.client,
            target_type="tenant",
            target_id=tenant_id,
            details=details,
        )

    def create(self, *, data: TenantCreate) -> TenantPublic:
        if self.platform.tenant_by_name(data.name) is not None:
            raise Conflict(f"A tenant named {data.name!r} already exists.")
        tenant = Tenant(id=new_id("tnt"), name=data.name, status="active", settings={})
        if data.quotas is not None:
            apply_quotas(tenant, data.quotas)
        if data.config is not None:
            apply_config(tenant, data.config, self.settings)
        tenant = self.platform.add_tenant(tenant)
        self._audit("tenant.create", tenant.id, name=data.name)
        self.session.commit()
        return tenant_public(tenant, self.settings)

    def list(self, *, limit: int, cursor: str | None) -> tuple[list[TenantPublic], str | None]:
        rows = self.platform.tenants(limit=limit, after_id=decode_cursor(cursor))
        items, next_cursor = page_of(rows, limit=limit, id_of=lambda t: t.id)
        return [tenant_public(t, self.settings) for t in items], next_cursor

    def get(self, *, tenant_id: str) -> TenantPublic:
        return tenant_public(self._get(tenant_id), self.settings)

    def update(self, *, tenant_id: str, data: TenantUpdate) -> TenantPublic:
        tenant = self._get(tenant_id)
        if tenant.is_platform and data.status == "suspended":
            raise Conflict("The platform tenant cannot be suspended.")
        if data.name is not None and data.name != tenant.name:
            if self.platform.tenant_by_name(data.name) is not None:
                raise Conflict(f"A tenant named {data.name!r} already exists.")
            tenant.name = data.name
        if data.status is not None:
            tenant.status = data.status  # every token and key of a suspended tenant fails at its next request
        details: dict[str, object] = data.model_dump(exclude_none=True, exclude={"quotas", "config"})
        if data.quotas is not None:
            details["quotas"] = apply_quotas(tenant, data.quotas)
        if data.config is not None:
            details["config"] = apply_config(tenant, data.config, self.settings)
        self._audit("tenant.update", tenant.id, **details)
        self.session.commit()
        return tenant_public(tenant, self.settings)

    def delete(self, *, tenant_id: str) -> None:
        tenant = self._get(tenant_id)
        if tenant.is_platform:
            raise Conflict("The platform tenant cannot be deleted.")
        self.platform.delete_tenant(tenant)  # rows of every domain go with it (ON DELETE CASCADE)
        self._audit("tenant.delete", tenant_id, name=tenant.name)
        self.session.commit()
        self.blobs.delete_prefix(self.blobs.key(TenantScope(tenant_id)))

    def _get(self, tenant_id: str) -> Tenant:
        tenant = self.platform.tenant(tenant_id)
        if tenant is None:
            raise NotFound("tenant", tenant_id)
        return tenant


class TenantConfigService:
    """A tenant admin's configuration of their own tenant — policy (`/tenant/settings`) and session and token
    lifetimes (`/tenant/security`); it changes that tenant's row and no other."""

    def __init__(self, *, session: Session, principal: Principal, settings: Settings, client: ClientInfo) -> None:
        self.session = session
        self.principal = principal
        self.settings = settings
        self.client = client
        self.platform = PlatformRepository(session=session)

    def get(self) -> TenantConfigPublic:
        return config_public(TenantPolicy.of(self._tenant(), self.settings))

    def update(self, *, data: TenantConfigUpdate) -> TenantConfigPublic:
        tenant = self._tenant()
        changes = apply_config(tenant, data, self.settings)
        audit.record(
            self.session,
            action="tenant.config_update",
            tenant_id=tenant.id,
            principal=self.principal,
            client=self.client,
            target_type="tenant",
            target_id=tenant.id,
            details=changes,
        )
        self.session.commit()
        return config_public(TenantPolicy.of(tenant, self.settings))

    def _tenant(self) -> Tenant:
        tenant = self.platform.tenant(self.principal.tenant_id)
        if tenant is None:
            raise NotFound("tenant", self.principal.tenant_id)
        return tenant

    def security(self) -> TenantSecurityPublic:
        return self._security_public(self._tenant())

    def update_security(self, *, data: TenantSecurityUpdate) -> TenantSecurityPublic:
        """Session and token lifetimes: a tenant may tighten (never loosen) the server's."""
        tenant = self._tenant()
        maxima = self._maxima()
        changes = data.model_dump(exclude_unset=True)
        errors = [
            {"loc": ["body", name], "msg": f"must be at most the server's {maxima[name]}", "type": "less_than_equal"}
            for name, value in changes.items()
            if value is not None and value > maxima[name]
        ]
        if errors:
            raise InvalidInput("A tenant may only tighten the server's limits.", errors=errors)
        security = {**(tenant.settings or {}).get("security", {}), **changes}
        tenant.settings = {**(tenant.settings or {}), "security": {k: v for k, v in security.items() if v is not None}}
        audit.record(
            self.session,
            action="tenant.security_update",
            tenant_id=tenant.id,
            principal=self.principal,
            client=self.client,
            target_type="tenant",
            target_id=tenant.id,
            details=changes,
        )
        self.session.commit()
        return self._security_public(tenant)

    def _maxima(self) -> dict[str, int]:
        s = self.settings
        return {
            "session_idle_timeout_s": s.session_idle_timeout_s,
            "session_lifetime_s": s.session_lifetime_s,
            "access_token_ttl_s": s.access_token_ttl_s,
        }

    def _security_public(self, tenant: Tenant) -> TenantSecurityPublic:
        policy = SecurityPolicy.of(tenant, self.settings)
        return TenantSecurityPublic(
            session_idle_timeout_s=policy.session_idle_timeout_s,
            session_lifetime_s=policy.session_lifetime_s,
            access_token_ttl_s=policy.access_token_ttl_s,
            platform_maximum=self._maxima(),
        )
