"""The one `Settings` object: every knob of the server, read from `VIGIL_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Built once in `create_app(settings)` and injected; tests build their own."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", env_file=None, extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("./vigil-data")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; defaults to a SQLite file in data_dir.")
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
    access_token_ttl_s: int = 15 * 60

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

    job_workers: int = 2
    job_poll_interval_s: float = 0.5
    job_lease_s: float = 60.0

    pagination_default_limit: int = 50
    pagination_max_limit: int = 500

    log_level: str = "INFO"
    log_json: bool = True

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
    def blob_root(self) -> Path:
        assert self.blob_dir is not None  # filled by the validator
        return self.blob_dir

    @property
    def is_sqlite(self) -> bool:
        return self.database_url_resolved.startswith("sqlite")
