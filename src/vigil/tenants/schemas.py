"""Tenant usage is shaped by identity's schemas (the quotas are identity's): re-exported for the router."""

from vigil.identity.schemas import QuotaUse, TenantUsagePublic

__all__ = ["QuotaUse", "TenantUsagePublic"]
