"""The one `Settings` object: every knob of the server, read from `VIGIL_*` environment variables."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Built once in `create_app(settings)` and injected; tests build their own."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", env_file=None, extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("./vigil-data")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; defaults to a SQLite file in data_dir.")
    database_admin_url: str | None = Field(
        default=None,
        description="The schema owner's URL, for migrations; defaults to database_url. On PostgreSQL the app's own "
        "URL should name a role that is neither the owner nor a superuser, so row-level security holds "
        "(`vigil db create-app-role`).",
    )
    database_pool_size: int = 5
    database_max_overflow: int = 10
    database_pool_timeout_s: float = 10.0
    blob_dir: Path | None = Field(default=None, description="Blob store root; defaults to data_dir/blobs.")

    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs tokens and model artifacts. Generated into data_dir on first start in development.",
    )
    jwt_issuer: str = "vigil"
    jwt_audience: str = "vigil-api"
    access_token_ttl_s: int = Field(default=15 * 60, ge=1)
    jwt_leeway_s: int = Field(default=5, ge=0, le=60, description="Clock skew tolerated on exp/nbf/iat.")
    session_idle_timeout_s: int = Field(default=30 * 60, ge=1, description="A session unused this long ends.")
    session_lifetime_s: int = Field(default=12 * 3600, ge=1, description="A session ends this long after login.")
    session_touch_interval_s: int = Field(default=60, ge=1, description="How often use of a session is recorded.")
    max_sessions_per_user: int = Field(default=50, ge=1, description="Beyond this, a login ends the oldest one.")

    redis_url: str | None = Field(default=None, description="Redis for rate-limit counters; in-memory when unset.")
    rate_limit_enabled: bool = True
    rate_limit_per_user: str = "1200/minute"
    rate_limit_per_api_key: str = "1200/minute"
    rate_limit_per_ip: str = "3000/minute"
    rate_limit_login_per_ip: str = "600/minute"
    rate_limit_key_prefix: str = "vigil"
    rate_limit_redis_retry_s: float = Field(default=5.0, gt=0, description="After a Redis failure, local counts.")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="CIDRs whose X-Forwarded-For is believed (a reverse proxy's address)."
    )

    login_max_failures_per_account_ip: int = Field(default=5, ge=1)
    login_max_failures_per_account: int = Field(default=20, ge=1)
    login_max_failures_per_ip: int = Field(default=100, ge=1)
    login_lockout_base_s: float = Field(default=2.0, gt=0)
    login_lockout_max_s: float = Field(default=900.0, gt=0)
    login_failure_window_s: float = Field(default=900.0, gt=0, description="Failures older than this are forgotten.")

    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: SecretStr | None = None

    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19 * 1024
    argon2_parallelism: int = 1
    password_min_length: int = 15

    max_upload_bytes: int = 100 * 1024 * 1024
    max_json_body_bytes: int = 10 * 1024 * 1024
    max_dataset_columns: int = 2048
    max_column_name_length: int = 256
    max_inline_records: int = 10_000
    preview_max_rows: int = 1_000
    explain_inline_max_rows: int = Field(
        default=1_000, ge=1, description="Inline detection explains at most this many rows; larger data as a job."
    )
    explain_job_max_rows: int = Field(
        default=200_000, ge=1, description="A detection job with explain takes datasets of at most this many rows."
    )
    compare_max_rows: int = Field(
        default=200_000, ge=1, description="Largest dataset two model versions are compared on (inline)."
    )
    report_inline_max_rows: int = Field(
        default=100_000, ge=0, description="Datasets with more rows are profiled/assessed/analysed by a job (202)."
    )

    # Per-tenant quotas: platform defaults, overridden per tenant by the superadmin (PATCH /tenants/{id}).
    quota_datasets: int = Field(default=1000, ge=0)
    quota_detectors: int = Field(default=500, ge=0)
    quota_storage_bytes: int = Field(default=10 * 1024**3, ge=0)
    quota_rows_per_dataset: int = Field(default=50_000_000, ge=0)
    quota_api_calls_per_hour: int = Field(default=100_000, ge=0)
    quota_concurrent_jobs: int = Field(default=4, ge=1)
    quota_streams: int = Field(default=50, ge=0, description="Streams of one tenant.")
    quota_stream_events_per_second: int = Field(
        default=20_000, ge=0, description="Events a tenant may send to its streams per second (all together)."
    )
    quota_feedback_labels: int = Field(default=1_000_000, ge=0, description="Labelled rows kept per tenant.")
    # Per-tenant configuration defaults (a tenant admin may change them for their tenant: PATCH /tenant/settings).
    tenant_default_contamination: float = Field(default=0.1, gt=0, le=0.5)
    tenant_retention_days: int | None = Field(default=None, ge=1, description="Datasets older are deleted; None keeps.")
    retention_sweep_interval_s: float = Field(default=3600.0, gt=0)

    job_workers: int = 2

    # Streams: batch and frame limits, durability (snapshot every N events or T seconds), the WebSocket.
    stream_max_batch_events: int = Field(default=1000, ge=1, le=100_000, description="Events per batch (413 beyond).")
    stream_max_frame_bytes: int = Field(default=1024 * 1024, ge=1024, description="A WebSocket frame's size limit.")
    stream_snapshot_every_events: int = Field(default=10_000, ge=1, description="Snapshot after this many events…")
    stream_snapshot_every_s: float = Field(default=60.0, gt=0, description="…or when the last is this old.")
    stream_hot_models: int = Field(default=256, ge=1, description="Stream models kept in memory per process.")
    stream_ws_auth_timeout_s: float = Field(default=10.0, gt=0, description="The first frame must come this soon.")
    stream_ws_max_in_flight: int = Field(default=8, ge=1, le=1000, description="Batches read but not answered.")
    stream_ws_send_timeout_s: float = Field(
        default=10.0, gt=0, description="A client that does not read its answers this long is disconnected."
    )
    stream_ws_ping_interval_s: float = Field(default=20.0, gt=0, description="WebSocket protocol pings (uvicorn).")

    job_poll_interval_s: float = 0.5
    job_lease_s: float = 60.0

    pagination_default_limit: int = 50
    pagination_max_limit: int = 500

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("rate_limit_per_user", "rate_limit_per_api_key", "rate_limit_per_ip", "rate_limit_login_per_ip")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit such as '1200/minute': {value!r}") from exc
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ip_network(network, strict=False)
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.data_dir = self.data_dir.resolve()
        if self.blob_dir is None:
            self.blob_dir = self.data_dir / "blobs"
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.data_dir / 'vigil.db'}"
        return self

    @property
    def database_url_resolved(self) -> str:
        assert self.database_url is not None  # filled by the validator
        return self.database_url

    @property
    def database_admin_url_resolved(self) -> str:
        return self.database_admin_url or self.database_url_resolved

    @property
    def blob_root(self) -> Path:
        assert self.blob_dir is not None  # filled by the validator
        return self.blob_dir

    @property
    def is_sqlite(self) -> bool:
        return self.database_url_resolved.startswith("sqlite")
