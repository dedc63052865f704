"""A tenant's quotas and configuration: platform defaults (`Settings.quota_*`, `Settings.tenant_*`) overridden per
tenant in `tenants.settings` (`quotas`, `config`), and the transactional check the domains make before they add.

Each domain counts its own use (it owns the table); this module only knows the limits and how to hold the
tenant's row while a count and an insert happen, so two concurrent requests cannot both take the last slot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.core.database import TenantScope
from vigil.core.errors import NotFound, QuotaExceeded
from vigil.identity.models import Tenant
from vigil.identity.repository import PlatformRepository

QUOTAS = (
    "datasets",
    "detectors",
    "storage_bytes",
    "rows_per_dataset",
    "api_calls_per_hour",
    "concurrent_jobs",
    "streams",
    "stream_events_per_second",
    "feedback_labels",
)


def default_quotas(settings: Settings) -> dict[str, int]:
    return {name: int(getattr(settings, f"quota_{name}")) for name in QUOTAS}


@dataclass(frozen=True)
class TenantPolicy:
    """What applies to one tenant: its quotas and its configuration, defaults filled in."""

    tenant_id: str
    quotas: dict[str, int]
    default_contamination: float
    allowed_algorithms: list[str] | None
    retention_days: int | None
    max_upload_bytes: int
    trusted_model_keys: list[str]

    @classmethod
    def of(cls, tenant: Tenant, settings: Settings) -> TenantPolicy:
        stored: dict[str, Any] = tenant.settings or {}
        quotas = {**default_quotas(settings), **{k: int(v) for k, v in stored.get("quotas", {}).items() if k in QUOTAS}}
        config: dict[str, Any] = stored.get("config", {})
        return cls(
            tenant_id=tenant.id,
            quotas=quotas,
            default_contamination=float(config.get("default_contamination", settings.tenant_default_contamination)),
            allowed_algorithms=config.get("allowed_algorithms"),
            retention_days=config.get("retention_days", settings.tenant_retention_days),
            max_upload_bytes=min(
                int(config.get("max_upload_bytes", settings.max_upload_bytes)), settings.max_upload_bytes
            ),
            trusted_model_keys=list(config.get("trusted_model_keys", [])),
        )

    def check(self, quota: str, *, used: int, adding: int = 1) -> None:
        """Refuses (403 `quota-exceeded`) when `adding` more would pass the limit."""
        limit = self.quotas[quota]
        if used + adding > limit:
            raise QuotaExceeded(quota, limit, used)


StorageCounter = Callable[[Session, TenantScope], int]


@dataclass(frozen=True)
class StorageMeter:
    """Everything a tenant stores, for its `storage_bytes` quota: each domain that keeps bytes (datasets, and the
    result datasets among them; model artifacts) lends a counter of its own, and `vigil.app` hands the meter to
    all — so a domain's check counts what the others store without importing them."""

    counters: tuple[StorageCounter, ...]

    def stored_bytes(self, session: Session, scope: TenantScope) -> int:
        return sum(count(session, scope) for count in self.counters)

    def check(self, session: Session, scope: TenantScope, settings: Settings, *, adding: int) -> None:
        """Refuses `adding` bytes past the quota, with the tenant's row locked until the caller's transaction ends."""
        policy = policy_of(session, scope, settings, lock=True)
        policy.check("storage_bytes", used=self.stored_bytes(session, scope), adding=adding)


def policy_of(session: Session, scope: TenantScope, settings: Settings, *, lock: bool = False) -> TenantPolicy:
    """The tenant's policy; with `lock=True` its row stays locked (PostgreSQL `FOR UPDATE`) until the caller's
    transaction ends, which serialises quota checks of one tenant (SQLite serialises all writers anyway)."""
    platform = PlatformRepository(session=session)
    tenant = platform.tenant_for_update(scope.tenant_id) if lock else platform.tenant(scope.tenant_id)
    if tenant is None:
        raise NotFound("tenant", scope.tenant_id)
    return TenantPolicy.of(tenant, settings)


def policies_of(session: Session, tenant_ids: list[str], settings: Settings) -> dict[str, TenantPolicy]:
    tenants = PlatformRepository(session=session).tenants_by_id(tenant_ids)
    return {t.id: TenantPolicy.of(t, settings) for t in tenants}


def concurrent_job_caps(session: Session, tenant_ids: list[str], settings: Settings) -> dict[str, int]:
    """Each tenant's `concurrent_jobs` quota, for the job runner's fair claims."""
    return {
        tenant_id: policy.quotas["concurrent_jobs"]
        for tenant_id, policy in policies_of(session, tenant_ids, settings).items()
    }


def retention_days_of(session: Session, tenant_ids: list[str], settings: Settings) -> dict[str, int | None]:
    """Each tenant's `retention_days` (None: kept), for pruning its finished job records."""
    return {
        tenant_id: policy.retention_days for tenant_id, policy in policies_of(session, tenant_ids, settings).items()
    }


def policies_with_retention(session: Session, settings: Settings) -> list[TenantPolicy]:
    """Every tenant whose datasets expire (its own `retention_days`, or the platform default)."""
    policies = [TenantPolicy.of(t, settings) for t in PlatformRepository(session=session).all_tenants()]
    return [p for p in policies if p.retention_days is not None]
