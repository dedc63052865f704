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
    database_connect_timeout_s: int = Field(
        default=5, ge=1, description="PostgreSQL: how long opening a connection may take before it is a 503."
    )
    request_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A request with no answer by then gets a 503 problem (with Retry-After) instead of hanging: a "
        "database that stopped answering must not hold clients forever. Streaming answers already started are kept.",
    )
    blob_dir: Path | None = Field(default=None, description="Blob store root; defaults to data_dir/blobs.")
    blob_url: str | None = Field(
        default=None,
        description="Where blobs live: a local directory (path or file://…; default blob_dir) or s3://bucket/prefix "
        "(any S3-compatible store; endpoint and credentials from the blob_s3_* settings or the usual AWS variables).",
    )
    blob_s3_endpoint_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:9000 (MinIO, moto…)")
    blob_s3_region: str | None = None
    blob_s3_access_key_id: str | None = None
    blob_s3_secret_access_key: SecretStr | None = None
    blob_connect_timeout_s: float = Field(default=3.0, gt=0)
    blob_request_timeout_s: float = Field(default=30.0, gt=0)
    blob_cache_dir: Path | None = Field(
        default=None, description="Local copies of immutable blobs read from object storage; data_dir/blob-cache."
    )
    blob_cache_bytes: int = Field(default=2 * 1024**3, ge=0, description="Bound of the local blob cache.")
    # Writers store a blob first and record its row afterwards (no slow I/O under the database's write lock), so a
    # blob without a row may be one whose row is a moment away: the orphan sweep leaves blobs younger than this.
    # An hour is far above any put -> record gap (an upload's staged file waits for its parse and check, a job's
    # result for its finish: seconds to minutes) and small beside the space a crash's leftovers take meanwhile.
    blob_orphan_grace_s: float = Field(
        default=3600.0,
        ge=0,
        description="Blobs no database row refers to are deleted by the hourly sweep once older than this.",
    )

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
        default_factory=list,
        description="CIDRs whose X-Forwarded-For (the client's address) and X-Forwarded-Proto (https: then HSTS) are "
        "believed (a reverse proxy's address).",
    )
    hsts_max_age_s: int = Field(
        default=31_536_000,
        ge=0,
        le=2**31,
        description="Strict-Transport-Security max-age sent on answers over HTTPS (directly, or from a trusted proxy "
        "saying X-Forwarded-Proto: https); 0 sends none.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, GET /metrics needs 'Authorization: Bearer <token>' (a scraper's credential); unset, "
        "it is open (keep it on an internal network).",
    )

    auth_cache_ttl_s: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="How long a resolved credential (token or API key → principal, tenant quota) is believed without "
        "asking the database; a logout, revocation, disabled user or suspended tenant takes effect within it in every "
        "process (at once in the process that made the change). 0 turns the cache off.",
    )

    lookup_cache_ttl_s: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="How long the request path believes a lookup (a detector's current model version) without "
        "asking the database; another process's retraining or deletion reaches this one within it (this process's "
        "own at once). 0 turns it off.",
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
    max_auth_body_bytes: int = Field(
        default=16 * 1024, ge=1024, description="Body limit of the credential routes (/auth/*), before any parsing."
    )
    max_decoded_bytes: int = Field(
        default=256 * 1024**2,
        ge=1024**2,
        description="What one request's data may decode to in memory; checked from file metadata before decoding.",
    )
    max_dataset_columns: int = 2048
    max_column_name_length: int = 256
    max_inline_records: int = 10_000
    # Bulk scoring in one request is what a Parquet or Arrow body is for: read as a table, charged from its metadata
    # (never parsed as JSON), so it may be larger than a JSON body; its rows bound one request's scoring time.
    max_detect_table_bytes: int = Field(
        default=64 * 1024**2, ge=1024, description="Body limit of a Parquet or Arrow detection body."
    )
    max_inline_table_rows: int = Field(
        default=250_000, ge=1, description="Rows a Parquet or Arrow detection body may hold (JSON: max_inline_records)."
    )
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

    job_workers: int = Field(default=2, ge=0, description="In-process worker threads (no broker configured).")
    job_poll_interval_s: float = Field(
        default=2.0, gt=0, description="Idle executors look for work this often; enqueues wake them at once."
    )
    job_lease_s: float = Field(
        default=60.0, gt=0, description="A running job whose owner is silent this long is requeued."
    )
    idempotency_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="A claimed Idempotency-Key whose request stops renewing it this long (a crashed process) is "
        "free for a retry to complete the write; a running request renews it every third of this.",
    )
    job_time_limits: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description='Per job kind [soft, hard] seconds, e.g. {"detector.train": [3500, 3600]}.'
    )
    job_partition_rows: int = Field(
        default=250_000, ge=1, description="Batch work (scoring a dataset) fans out in parts of about this many rows."
    )
    job_retention_days: int = Field(
        default=30, ge=1, description="Finished job records are pruned after the tenant's retention, or this."
    )
    scoring_concurrency: int = Field(
        default=0,
        ge=0,
        description="Inline detections scored at once by one server process; more wait their turn without holding a "
        "thread. 0: the number of CPUs.",
    )
    gil_switch_interval_ms: float = Field(
        default=1.0,
        ge=0,
        le=100,
        description="How often a busy thread (training, scoring) offers the interpreter lock to the others, above all "
        "the event loop that answers requests (Python's default is 5 ms). 0 leaves the interpreter's own setting.",
    )
    warm_imports: bool = Field(
        default=True, description="Import the detector libraries in the background after start (PyOD takes seconds)."
    )

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

    broker_url: str | None = Field(
        default=None,
        description="amqp://… (RabbitMQ) or redis://…: API processes only enqueue, `vigil worker` runs the jobs. "
        "Unset: jobs run in threads of the API process (the embedded default).",
    )
    broker_queue: str = Field(default="vigil.jobs", pattern=r"^[A-Za-z0-9_.:-]{1,100}$")
    broker_connect_timeout_s: float = Field(default=3.0, gt=0)
    job_dispatch_interval_s: float = Field(
        default=5.0, gt=0, description="The outbox sweep: queued jobs not yet published are published this often."
    )
    job_redispatch_after_s: float = Field(
        default=30.0, gt=0, description="A queued job nobody claimed this long after its message is published again."
    )
    worker_concurrency: int | None = Field(default=None, ge=1, description="Worker child processes; default: cores.")
    worker_max_memory_mb: int | None = Field(
        default=4096, ge=64, description="Address-space cap of each worker child: a bigger job fails out of memory."
    )
    worker_max_tasks_per_child: int = Field(default=200, ge=1)
    worker_shutdown_grace_s: float = Field(
        default=30.0, ge=0, description="On SIGTERM, running jobs may finish this long; then they are handed back."
    )
    migrate_on_start: bool = Field(default=True, description="Apply migrations when the server starts.")

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

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("amqp://", "amqps://", "pyamqp://", "redis://", "rediss://")):
            raise ValueError("must be an amqp:// (RabbitMQ) or redis:// URL")
        return value

    @field_validator("blob_url")
    @classmethod
    def _blob_url(cls, value: str | None) -> str | None:
        if value is not None and "://" in value and not value.startswith(("s3://", "file://")):
            raise ValueError("must be a directory, file://… or s3://bucket/prefix")
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.data_dir = self.data_dir.resolve()
        if self.blob_dir is None:
            self.blob_dir = self.data_dir / "blobs"
        if self.blob_cache_dir is None:
            self.blob_cache_dir = self.data_dir / "blob-cache"
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.data_dir / 'vigil.db'}"
        if self.broker_url is not None and self.is_sqlite:
            raise ValueError(
                "a broker (VIGIL_BROKER_URL) needs a database every process shares: set VIGIL_DATABASE_URL to "
                "PostgreSQL, or unset the broker to run jobs in the API process"
            )
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
    def blob_location(self) -> str:
        """The blob store as a URL or a local directory (`blob_url`, else `blob_dir`)."""
        if self.blob_url:
            return self.blob_url
        return str(self.blob_root)

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None (in memory, or another database)."""
        url = self.database_url_resolved
        if not url.startswith("sqlite:///") or url in ("sqlite:///:memory:", "sqlite:///"):
            return None
        return Path(url.removeprefix("sqlite:///")).resolve()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url_resolved.startswith("sqlite")
