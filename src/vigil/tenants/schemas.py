"""Tenant request and response models: the superadmin's management, a tenant admin's settings and security, and
the usage report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from vigil.core.bounds import MAX_DURATION_S
from vigil.core.names import Name
from vigil.identity.schemas import Strict


class TenantSecurityUpdate(Strict):
    # At most ten years: a duration is added to a timestamp, which overflows long before 2**63 seconds.
    session_idle_timeout_s: Annotated[int, Field(ge=1, le=MAX_DURATION_S)] | None = None
    session_lifetime_s: Annotated[int, Field(ge=1, le=MAX_DURATION_S)] | None = None
    access_token_ttl_s: Annotated[int, Field(ge=1, le=MAX_DURATION_S)] | None = None


class TenantSecurityPublic(BaseModel):
    session_idle_timeout_s: int
    session_lifetime_s: int
    access_token_ttl_s: int
    platform_maximum: dict[str, int] = Field(description="The server's values: a tenant may only tighten them.")


Count = Annotated[int, Field(ge=0, le=2**62)]
AlgorithmName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


PublicKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]


class TenantQuotas(Strict):
    """Per-tenant overrides of the platform's quota defaults; null restores the default."""

    datasets: Count | None = None
    detectors: Count | None = None
    storage_bytes: Count | None = None
    rows_per_dataset: Count | None = None
    api_calls_per_hour: Count | None = None
    concurrent_jobs: Annotated[int, Field(ge=1, le=1000)] | None = None
    streams: Count | None = None
    stream_events_per_second: Count | None = Field(
        default=None, description="Events per second sent to the tenant's streams, all together (429 beyond)."
    )
    feedback_labels: Count | None = None


class TenantConfigUpdate(Strict):
    """A tenant's own configuration; null restores the platform default."""

    default_contamination: Annotated[float, Field(gt=0, le=0.5)] | None = None
    allowed_algorithms: Annotated[list[AlgorithmName], Field(max_length=100)] | None = None
    retention_days: Annotated[int, Field(ge=1, le=100_000)] | None = None
    max_upload_bytes: Annotated[int, Field(ge=1, le=2**62)] | None = Field(
        default=None, description="At most the server's VIGIL_MAX_UPLOAD_BYTES."
    )
    trusted_model_keys: Annotated[list[PublicKey], Field(max_length=50)] | None = Field(
        default=None,
        description="Ed25519 public keys (another installation's signing key) whose exports may be imported.",
    )


class TenantConfigPublic(BaseModel):
    default_contamination: float
    allowed_algorithms: list[str] | None = Field(description="null: every algorithm of the catalog")
    retention_days: int | None = Field(description="Datasets older than this are deleted; null keeps them.")
    max_upload_bytes: int
    trusted_model_keys: list[str] = Field(default_factory=list)


class TenantCreate(Strict):
    name: Name
    quotas: TenantQuotas | None = None
    config: TenantConfigUpdate | None = None


class TenantUpdate(Strict):
    name: Name | None = None
    status: Annotated[str, Field(pattern="^(active|suspended)$")] | None = None
    quotas: TenantQuotas | None = None
    config: TenantConfigUpdate | None = None


class TenantPublic(BaseModel):
    id: str
    name: str
    status: str
    quotas: dict[str, int] = Field(description="The limits in force: the tenant's overrides, else the defaults.")
    config: TenantConfigPublic
    created_at: datetime
    updated_at: datetime


class QuotaUse(BaseModel):
    used: int
    limit: int


class TenantUsagePublic(BaseModel):
    tenant_id: str
    usage: dict[str, QuotaUse] = Field(description="Per quota: current use and the limit in force.")
