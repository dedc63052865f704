"""The suite's configuration: pydantic models of `config/default.yaml` and a loader whose errors name the key."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the offending keys."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiConfig(Section):
    request_timeout_s: PositiveFloat
    job_timeout_s: PositiveFloat
    job_poll_interval_s: PositiveFloat


class PerformanceConfig(Section):
    """What the performance suite asserts (each overridable in a `--config` file)."""

    detect_p99_ms: PositiveFloat
    upload_p99_ms: PositiveFloat
    read_p99_ms: PositiveFloat
    write_p99_ms: PositiveFloat
    error_rate_max: Annotated[float, Field(ge=0, le=1)]
    throughput_min_fraction: Annotated[float, Field(gt=0, le=1)]
    memory_growth_max_mib_per_min: Annotated[float, Field(ge=0)]
    memory_max_mib: PositiveFloat
    stress_p99_ms: PositiveFloat
    stress_error_rate_max: Annotated[float, Field(ge=0, le=1)]
    knee_min_per_s: PositiveFloat
    cpu_ms_per_request_max: PositiveFloat


class SecurityConfig(Section):
    public_paths: list[str]
    password: Annotated[str, Field(min_length=15)]


Rate = Annotated[float, Field(gt=0, le=10_000)]
Seconds = Annotated[float, Field(gt=0, le=3600)]


class LoadProfile(Section):
    """One profile's load: how many virtual users, which arrival rates, for how long."""

    virtual_users: Annotated[int, Field(ge=1, le=1000)]
    mixed_rate_per_s: Rate
    mixed_duration_s: Seconds
    database_rate_per_s: Rate
    database_duration_s: Seconds
    arrival_rates_per_s: Annotated[list[Rate], Field(min_length=1, max_length=20)]
    step_duration_s: Seconds
    soak_rate_per_s: Rate
    soak_duration_s: Seconds
    soak_warmup_s: Annotated[float, Field(ge=0, le=3600)]
    stress_start_per_s: Rate
    stress_growth: Annotated[float, Field(gt=1, le=10)]
    stress_max_per_s: Rate
    stress_step_s: Seconds

    @model_validator(mode="after")
    def _warmup_inside_soak(self) -> LoadProfile:
        if self.soak_warmup_s >= self.soak_duration_s:
            raise ValueError("soak_warmup_s must be shorter than soak_duration_s")
        if self.stress_max_per_s < self.stress_start_per_s:
            raise ValueError("stress_max_per_s must be at least stress_start_per_s")
        return self


class LoadTestingConfig(Section):
    """The open-model load generator's bounds, and the two profiles (`--profile short|full`)."""

    profile: Literal["short", "full"]
    max_requests: Annotated[int, Field(ge=1, le=1_000_000)]
    max_in_flight: Annotated[int, Field(ge=1, le=1024)]
    request_timeout_s: Annotated[float, Field(gt=0, le=300)]
    sample_interval_s: Annotated[float, Field(gt=0, le=60)]
    progress: bool
    short: LoadProfile
    full: LoadProfile

    @property
    def active(self) -> LoadProfile:
        """The chosen profile's settings."""
        return self.short if self.profile == "short" else self.full


class MultiTenantConfig(Section):
    tenants: Annotated[int, Field(ge=2)]
    quiet_rounds: Annotated[int, Field(ge=2, le=50)]
    flood_jobs: Annotated[int, Field(ge=1, le=500)]
    flood_requests: Annotated[int, Field(ge=1, le=100_000)]
    flood_concurrency: Annotated[int, Field(ge=1, le=64)]
    noisy_concurrent_jobs: Annotated[int, Field(ge=1)] | None
    samples: Annotated[int, Field(ge=3, le=1000)]


class DisasterRecoveryConfig(Section):
    """The disaster-recovery suite: its own deployment, faults injected on a seeded schedule."""

    recovery_time_objective_s: PositiveFloat  # from a fault's end to the first fully successful read and write
    server_request_timeout_s: PositiveFloat  # the deployment's VIGIL_REQUEST_TIMEOUT_S
    answer_within_s: PositiveFloat  # every request during a fault is answered (any status) within this
    fault_duration_s: PositiveFloat
    faults: Annotated[int, Field(ge=1, le=10_000)]  # the consistency checker's schedule length (`--faults N`)
    seed: int  # its seed (`--seed S`)
    crash_kills: Annotated[int, Field(ge=1, le=1000)]  # SIGKILLs of the API in the crash-consistency scenario
    writers: Annotated[int, Field(ge=1, le=32)]
    jobs_end_s: PositiveFloat  # after the read-back, every job the workload made has ended within this


class ContractsConfig(Section):
    json_body_limit_bytes: PositiveInt
    max_page_limit: PositiveInt
    pagination_items: Annotated[int, Field(ge=3, le=100)]
    fuzz_examples: Annotated[int, Field(ge=1, le=100_000)]
    fuzz_min_requests: Annotated[int, Field(ge=0)]
    fuzz_admins: Annotated[int, Field(ge=1, le=20)]
    fuzz_timeout_s: PositiveFloat
    fuzz_seed: int | None = None
    baseline_spec: str | None = None


class TestDataConfig(Section):
    __test__ = False  # not a pytest test class, whatever its name

    dataset: str
    label_column: str
    features: Annotated[list[str], Field(min_length=1)]
    contamination: Annotated[float, Field(gt=0, le=0.5)]
    min_roc_auc: Annotated[float, Field(ge=0.5, le=1)]
    algorithms: Annotated[list[str], Field(min_length=1)]


class StreamingConfig(Section):
    """The streaming workflow: a synthetic stream with planted point anomalies and a concept drift half way."""

    events: Annotated[int, Field(ge=1000, le=1_000_000)]
    features: Annotated[int, Field(ge=2, le=64)]
    anomaly_rate: Annotated[float, Field(gt=0, lt=0.2)]
    drift_shift: Annotated[float, Field(gt=0)]
    batch_size: Annotated[int, Field(ge=1, le=1000)]
    warmup: Annotated[int, Field(ge=0)]
    quantile: Annotated[float, Field(gt=0.5, lt=1)]
    min_recall: Annotated[float, Field(ge=0, le=1)]
    max_false_positive_rate: Annotated[float, Field(ge=0, le=1)]
    max_drift_delay_events: PositiveInt


class ClusterConfig(Section):
    api_processes: Annotated[int, Field(ge=1, le=16)]
    workers: Annotated[int, Field(ge=1, le=16)]
    worker_concurrency: Annotated[int, Field(ge=1, le=32)]
    database_url: str
    redis_url: str
    broker_url: str
    object_store_url: str | None

    @field_validator("database_url")
    @classmethod
    def _postgres(cls, value: str) -> str:
        if not value.startswith("postgresql"):
            raise ValueError("a cluster runs on PostgreSQL: a postgresql:// (or postgresql+psycopg://) URL")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, value: str) -> str:
        if not value.startswith(("amqp://", "amqps://", "redis://", "rediss://")):
            raise ValueError("must be an amqp:// (RabbitMQ) or redis:// URL")
        return value


class EnvironmentConfig(Section):
    target_url: str | None
    admin_email: str | None
    admin_password: str | None
    database_url: str | None
    redis_url: str | None
    parallel: Annotated[int, Field(ge=1, le=64)]
    startup_timeout_s: PositiveFloat
    test_timeout_s: PositiveFloat
    allow_destructive_on_remote: bool
    keep_data: bool
    server_env: dict[str, str]

    @field_validator("target_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("postgresql"):
            raise ValueError("must be a postgresql:// (or postgresql+psycopg://) URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://")):
            raise ValueError("must be a redis:// (or rediss://) URL")
        return value


class ValidationConfig(Section):
    api: ApiConfig
    performance: PerformanceConfig
    security: SecurityConfig
    load_testing: LoadTestingConfig
    multi_tenant: MultiTenantConfig
    disaster_recovery: DisasterRecoveryConfig
    contracts: ContractsConfig
    test_data: TestDataConfig
    streaming: StreamingConfig
    cluster: ClusterConfig
    environment: EnvironmentConfig

    def with_profile(self, profile: str | None) -> ValidationConfig:
        """A copy with the performance profile chosen on the command line (`--profile short|full`)."""
        if profile is None:
            return self
        if profile not in ("short", "full"):
            raise ConfigError(f"--profile must be short or full, not {profile!r}")
        return self.model_copy(update={"load_testing": self.load_testing.model_copy(update={"profile": profile})})

    def with_contracts(self, *, fuzz_examples: int | None = None, baseline_spec: str | None = None) -> ValidationConfig:
        """A copy with the contracts options of the command line (`--fuzz-examples N`, `--baseline OLD_SPEC.json`)."""
        given: dict[str, Any] = {}
        if fuzz_examples is not None:
            given["fuzz_examples"] = fuzz_examples
        if baseline_spec is not None:
            path = Path(baseline_spec).expanduser().resolve()
            if not path.is_file():
                raise ConfigError(f"--baseline: no such file {baseline_spec!r}")
            given["baseline_spec"] = str(path)
        if not given:
            return self
        try:
            contracts = ContractsConfig.model_validate({**self.contracts.model_dump(), **given})
        except ValidationError as exc:
            raise ConfigError(_describe(exc, "command line", prefix="contracts")) from exc
        return self.model_copy(update={"contracts": contracts})

    def with_fault_schedule(self, *, faults: int | None, seed: int | None) -> ValidationConfig:
        """A copy with the disaster-recovery schedule chosen on the command line (`--faults N --seed S`)."""
        given = {k: v for k, v in {"faults": faults, "seed": seed}.items() if v is not None}
        if not given:
            return self
        try:
            section = DisasterRecoveryConfig.model_validate({**self.disaster_recovery.model_dump(), **given})
        except ValidationError as exc:
            raise ConfigError(_describe(exc, "command line", prefix="disaster_recovery")) from exc
        return self.model_copy(update={"disaster_recovery": section})

    def with_environment(self, **changes: Any) -> ValidationConfig:
        """A copy with command-line options applied over the file's environment section."""
        given = {k: v for k, v in changes.items() if v is not None}
        if not given:
            return self
        merged = {**self.environment.model_dump(), **given}
        try:
            environment = EnvironmentConfig.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, "command line", prefix="environment")) from exc
        return self.model_copy(update={"environment": environment})


def default_text() -> str:
    return resources.files("vigil_validation").joinpath("config/default.yaml").read_text(encoding="utf-8")


def load_config(path: Path | None = None) -> ValidationConfig:
    """The defaults, with the file at `path` (if any) merged over them, validated."""
    data = _parse(default_text(), "default.yaml")
    source = "default.yaml"
    if path is not None:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
        data = _merge(data, _parse(text, source))
    try:
        return ValidationConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc


def admin_credentials(config: ValidationConfig) -> tuple[str | None, str | None]:
    """Bootstrap credentials for a remote target: the environment wins over the file (keeps secrets out of it)."""
    env = config.environment
    return (
        os.environ.get("VIGIL_VALIDATION_ADMIN_EMAIL") or env.admin_email,
        os.environ.get("VIGIL_VALIDATION_ADMIN_PASSWORD") or env.admin_password,
    )


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, not {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "server_env":
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(exc: ValidationError, source: str, prefix: str = "") -> str:
    lines = [f"invalid configuration in {source}:"]
    for error in exc.errors():
        key = ".".join(str(part) for part in ((prefix,) if prefix else ()) + tuple(error["loc"]))
        if error["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        elif error["type"] == "missing":
            lines.append(f"  {key}: required key is missing")
        else:
            lines.append(f"  {key}: {error['msg']} (got {error.get('input')!r})")
    return "\n".join(lines)
