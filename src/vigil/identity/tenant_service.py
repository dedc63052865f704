"""Identity's service surface for tenants: the tenant rows and the policies they carry (quotas, configuration,
session and token lifetimes), with their rules and audit events. Other domains (`vigil.tenants`) call it and get
domain values (`TenantView`); shaping them for HTTP is theirs."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.core.clientinfo import ClientInfo
from vigil.core.database import TenantScope
from vigil.core.errors import Conflict, InvalidInput, NotFound
from vigil.core.ids import new_id
from vigil.core.pagination import decode_cursor, page_of
from vigil.identity import audit
from vigil.identity.auth_service import SecurityPolicy
from vigil.identity.models import Tenant
from vigil.identity.principal import Principal
from vigil.identity.quotas import TenantPolicy, policy_of
from vigil.identity.ratelimit import RateLimiter, per_hour
from vigil.identity.repository import PlatformRepository, UserRepository
from vigil.identity.schemas import UserPublic

EXPORT_PAGE = 500


@dataclass(frozen=True, slots=True)
class TenantView:
    """A tenant as identity tells the rest of the platform: its record and the policies in force."""

    id: str
    name: str
    status: str
    created_at: datetime
    updated_at: datetime
    policy: TenantPolicy
    security: SecurityPolicy

    @classmethod
    def of(cls, tenant: Tenant, settings: Settings) -> TenantView:
        return cls(
            id=tenant.id,
            name=tenant.name,
            status=tenant.status,
            created_at=tenant.created_at,
            updated_at=tenant.updated_at,
            policy=TenantPolicy.of(tenant, settings),
            security=SecurityPolicy.of(tenant, settings),
        )


def security_maxima(settings: Settings) -> dict[str, int]:
    """The server's session and token lifetimes: a tenant may only tighten them."""
    return {
        "session_idle_timeout_s": settings.session_idle_timeout_s,
        "session_lifetime_s": settings.session_lifetime_s,
        "access_token_ttl_s": settings.access_token_ttl_s,
    }


def _merged(stored: dict[str, Any], section: str, changes: dict[str, Any]) -> dict[str, Any]:
    """The tenant's settings with `changes` applied to `section`; a null value restores the default."""
    merged = {**stored.get(section, {}), **changes}
    return {**stored, section: {k: v for k, v in merged.items() if v is not None}}


def _apply_config(tenant: Tenant, changes: dict[str, Any], settings: Settings) -> dict[str, Any]:
    limit = changes.get("max_upload_bytes")
    if limit is not None and limit > settings.max_upload_bytes:
        raise InvalidInput(
            "A tenant's upload limit cannot exceed the server's.",
            errors=[{"loc": ["body", "max_upload_bytes"], "msg": f"must be at most {settings.max_upload_bytes}"}],
        )
    tenant.settings = _merged(tenant.settings or {}, "config", changes)
    return changes


def _apply_quotas(tenant: Tenant, changes: dict[str, Any]) -> dict[str, Any]:
    tenant.settings = _merged(tenant.settings or {}, "quotas", changes)
    return changes


class TenantDirectory:
    """The platform's tenants, as the superadmin manages them, and what other domains read about one tenant."""

    def __init__(self, *, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.platform = PlatformRepository(session=session)

    def create(
        self,
        *,
        name: str,
        quotas: dict[str, Any] | None,
        config: dict[str, Any] | None,
        principal: Principal,
        client: ClientInfo,
    ) -> TenantView:
        if self.platform.tenant_by_name(name) is not None:
            raise Conflict(f"A tenant named {name!r} already exists.")
        tenant = Tenant(id=new_id("tnt"), name=name, status="active", settings={})
        if quotas is not None:
            _apply_quotas(tenant, quotas)
        if config is not None:
            _apply_config(tenant, config, self.settings)
        tenant = self.platform.add_tenant(tenant)
        self._audit("tenant.create", tenant.id, principal, client, name=name)
        self.session.commit()
        return TenantView.of(tenant, self.settings)

    def list(self, *, limit: int, cursor: str | None) -> tuple[builtins.list[TenantView], str | None]:
        rows = self.platform.tenants(limit=limit, after_id=decode_cursor(cursor))
        items, next_cursor = page_of(rows, limit=limit, id_of=lambda t: t.id)
        return [TenantView.of(t, self.settings) for t in items], next_cursor

    def get(self, *, tenant_id: str) -> TenantView:
        return TenantView.of(self._get(tenant_id), self.settings)

    def update(
        self,
        *,
        tenant_id: str,
        name: str | None,
        status: str | None,
        quotas: dict[str, Any] | None,
        config: dict[str, Any] | None,
        principal: Principal,
        client: ClientInfo,
    ) -> TenantView:
        tenant = self._get(tenant_id)
        if tenant.is_platform and status == "suspended":
            raise Conflict("The platform tenant cannot be suspended.")
        details: dict[str, object] = {}
        if name is not None:
            details["name"] = name
            if name != tenant.name:
                if self.platform.tenant_by_name(name) is not None:
                    raise Conflict(f"A tenant named {name!r} already exists.")
                tenant.name = name
        if status is not None:
            details["status"] = status
            tenant.status = status  # every token and key of a suspended tenant fails at its next request
        if quotas is not None:
            details["quotas"] = _apply_quotas(tenant, quotas)
        if config is not None:
            details["config"] = _apply_config(tenant, config, self.settings)
        self._audit("tenant.update", tenant.id, principal, client, **details)
        self.session.commit()
        return TenantView.of(tenant, self.settings)

    def delete(self, *, tenant_id: str, principal: Principal, client: ClientInfo) -> None:
        """Removes the tenant's rows (those of every domain go with it: ON DELETE CASCADE); its files are the
        caller's to remove after this commits."""
        tenant = self._get(tenant_id)
        if tenant.is_platform:
            raise Conflict("The platform tenant cannot be deleted.")
        self.platform.delete_tenant(tenant)
        self._audit("tenant.delete", tenant_id, principal, client, name=tenant.name)
        self.session.commit()

    def policy(self, *, tenant_id: str) -> TenantPolicy:
        return policy_of(self.session, TenantScope(tenant_id), self.settings)

    def users(self, *, tenant_id: str) -> builtins.list[UserPublic]:
        """Every user of the tenant (no secrets), in id order — for the tenant's export."""
        users = UserRepository(session=self.session, scope=TenantScope(tenant_id))
        found: builtins.list[UserPublic] = []
        after: str | None = None
        while True:
            rows = users.list(limit=EXPORT_PAGE, after_id=after)
            found.extend(UserPublic.model_validate(u) for u in rows[:EXPORT_PAGE])
            if len(rows) <= EXPORT_PAGE:
                return found
            after = rows[EXPORT_PAGE - 1].id

    def _audit(self, action: str, tenant_id: str, principal: Principal, client: ClientInfo, **details: object) -> None:
        # Kept with the superadmin's own tenant: a deleted tenant's events go with it, this one must not.
        audit.record(
            self.session,
            action=action,
            tenant_id=principal.tenant_id,
            principal=principal,
            client=client,
            target_type="tenant",
            target_id=tenant_id,
            details=details,
        )

    def _get(self, tenant_id: str) -> Tenant:
        tenant = self.platform.tenant(tenant_id)
        if tenant is None:
            raise NotFound("tenant", tenant_id)
        return tenant


class OwnTenant:
    """A tenant admin's configuration of their own tenant — policy and session and token lifetimes; it changes
    that tenant's row and no other."""

    def __init__(self, *, session: Session, principal: Principal, settings: Settings, client: ClientInfo) -> None:
        self.session = session
        self.principal = principal
        self.settings = settings
        self.client = client
        self.platform = PlatformRepository(session=session)

    def get(self) -> TenantView:
        return TenantView.of(self._tenant(), self.settings)

    def configure(self, *, changes: dict[str, Any]) -> TenantView:
        """Applies configuration changes (a null value restores the platform default)."""
        tenant = self._tenant()
        _apply_config(tenant, changes, self.settings)
        self._audit("tenant.config_update", tenant, changes)
        self.session.commit()
        return TenantView.of(tenant, self.settings)

    def secure(self, *, changes: dict[str, Any]) -> TenantView:
        """Session and token lifetimes: a tenant may tighten (never loosen) the server's."""
        tenant = self._tenant()
        maxima = security_maxima(self.settings)
        errors = [
            {"loc": ["body", name], "msg": f"must be at most the server's {maxima[name]}", "type": "less_than_equal"}
            for name, value in changes.items()
            if value is not None and value > maxima[name]
        ]
        if errors:
            raise InvalidInput("A tenant may only tighten the server's limits.", errors=errors)
        security = {**(tenant.settings or {}).get("security", {}), **changes}
        tenant.settings = {**(tenant.settings or {}), "security": {k: v for k, v in security.items() if v is not None}}
        self._audit("tenant.security_update", tenant, changes)
        self.session.commit()
        return TenantView.of(tenant, self.settings)

    def _audit(self, action: str, tenant: Tenant, changes: dict[str, Any]) -> None:
        audit.record(
            self.session,
            action=action,
            tenant_id=tenant.id,
            principal=self.principal,
            client=self.client,
            target_type="tenant",
            target_id=tenant.id,
            details=changes,
        )

    def _tenant(self) -> Tenant:
        tenant = self.platform.tenant(self.principal.tenant_id)
        if tenant is None:
            raise NotFound("tenant", self.principal.tenant_id)
        return tenant


def api_calls_this_hour(limiter: RateLimiter, *, tenant_id: str, limit: int) -> int:
    """How many API calls the tenant's hourly quota window has counted."""
    return limiter.used(per_hour(limit), "tenant", tenant_id)
