"""A tenant's use of each quota, counted where each domain keeps it, next to the limits in force."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session

from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.core.errors import NotFound
from vigil.datasets.repository import DatasetRepository
from vigil.detectors.repository import DetectorRepository
from vigil.identity.principal import Principal
from vigil.identity.quotas import QUOTAS, policy_of
from vigil.identity.ratelimit import RateLimiter, per_hour, per_seconds
from vigil.identity.repository import PlatformRepository
from vigil.jobs.repository import JobRepository
from vigil.streams.repository import StreamRepository
from vigil.tenants.export import build_export, stream_then_delete
from vigil.tenants.schemas import QuotaUse, TenantUsagePublic


def check_access(principal: Principal, tenant_id: str) -> None:
    """A tenant admin acts on their own tenant only; any other id is unknown to them (404, not 403)."""
    if not principal.is_superadmin and tenant_id != principal.tenant_id:
        raise NotFound("tenant", tenant_id)


class ExportService:
    def __init__(self, *, session: Session, principal: Principal, app: AppContext) -> None:
        self.session = session
        self.principal = principal
        self.app = app

    def export(self, *, tenant_id: str) -> Iterator[bytes]:
        check_access(self.principal, tenant_id)
        if PlatformRepository(session=self.session).tenant(tenant_id) is None:
            raise NotFound("tenant", tenant_id)
        return stream_then_delete(build_export(self.session, self.app, tenant_id))


class UsageService:
    def __init__(self, *, session: Session, principal: Principal, app: AppContext, limiter: RateLimiter) -> None:
        self.session = session
        self.principal = principal
        self.app = app
        self.limiter = limiter

    def usage(self, *, tenant_id: str) -> TenantUsagePublic:
        check_access(self.principal, tenant_id)
        scope = TenantScope(tenant_id)
        policy = policy_of(self.session, scope, self.app.settings)
        datasets, stored = DatasetRepository(session=self.session, scope=scope).usage()
        used = {
            "datasets": datasets,
            "storage_bytes": stored,
            "rows_per_dataset": DatasetRepository(session=self.session, scope=scope).largest_rows(),
            "detectors": DetectorRepository(session=self.session, scope=scope).count(),
            "concurrent_jobs": JobRepository(session=self.session, scope=scope).count_running(),
            "api_calls_per_hour": self.limiter.used(per_hour(policy.quotas["api_calls_per_hour"]), "tenant", tenant_id),
            "streams": StreamRepository(session=self.session, scope=scope).count(),
            "stream_events_per_second": self.limiter.used(
                per_seconds(policy.quotas["stream_events_per_second"], 1), "stream-events", tenant_id
            ),
        }
        return TenantUsagePublic(
            tenant_id=tenant_id,
            usage={name: QuotaUse(used=used[name], limit=policy.quotas[name]) for name in QUOTAS},
        )
