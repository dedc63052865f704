"""The disaster-recovery suite's fixtures: its own deployment (once per session: a start costs seconds), healed
and running again after every test, and fresh tenants on it."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vigil.client import VigilClient
from vigil_validation import handover
from vigil_validation.config import DisasterRecoveryConfig, ValidationConfig
from vigil_validation.plugin import Recorder
from vigil_validation.suites.disaster_recovery.checker import Verdict
from vigil_validation.suites.disaster_recovery.cluster_deployment import ClusterDeployment, cluster_deployment
from vigil_validation.suites.disaster_recovery.deployment import Database, Deployment, deployment
from vigil_validation.suites.disaster_recovery.timeline import Timeline, percentile
from vigil_validation.targets import Target

# Worst case of one scheduled fault beyond its own duration: the gap before it (≤ 1.5 s, schedule.py), the wait for
# recovery after it (the objective + 20 s, the scenario's limit) and a restart of the API under load.
_RESTART_S = 30.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The seeded schedule's time limit grows with its length (`--faults N`): the run's limit per test holds for
    the configured few, and a 100-fault run is cut by it half way otherwise."""
    try:
        run = handover.config_from_env()
    except handover.NoTarget:  # not inside a validation run: nothing to scale
        return
    dr = run.disaster_recovery
    per_fault = 1.5 + dr.fault_duration_s + dr.recovery_time_objective_s + 20 + _RESTART_S
    limit = run.environment.test_timeout_s + dr.faults * per_fault
    for item in items:
        if item.name.startswith("test_nothing_acknowledged_is_lost_under_a_seeded_fault_schedule"):
            item.add_marker(pytest.mark.timeout(limit))


@pytest.fixture(scope="session")
def dr_config(validation_config: ValidationConfig) -> DisasterRecoveryConfig:
    return validation_config.disaster_recovery


@pytest.fixture(scope="session")
def dr_database(target: Target, validation_config: ValidationConfig) -> Database:
    """The target's kind of database: PostgreSQL (on a private server the suite may crash) or SQLite."""
    on_postgres = target.kind == "cluster" or validation_config.environment.database_url is not None
    return "postgresql" if on_postgres else "sqlite"


def _log_dir(database: Database) -> Path:
    summary = handover.summary_path_from_env()
    root = Path(summary).parent if summary else Path(tempfile.gettempdir())
    return root / "disaster_recovery" / f"{database}-{os.getpid()}"


@pytest.fixture(scope="session")
def dr(
    dr_database: Database, validation_config: ValidationConfig, dr_config: DisasterRecoveryConfig, target: Target
) -> Iterator[Deployment]:
    redis_url = validation_config.environment.redis_url
    if redis_url is None and target.kind == "cluster":
        redis_url = validation_config.cluster.redis_url
    with deployment(
        database=dr_database,
        log_dir=_log_dir(dr_database),
        redis_url=redis_url,
        server_env={
            "VIGIL_REQUEST_TIMEOUT_S": f"{dr_config.server_request_timeout_s:g}",
            # A crashed request's idempotency claim frees up after this (default 30 s): the checker's retries, which
            # wait for it, finish sooner. The behaviour tested is the same at any lease.
            "VIGIL_IDEMPOTENCY_LEASE_S": "5",
            # The workload's and probes' clients send raw requests (no refresh on 401): their access tokens must
            # outlive a long schedule (`--faults 100` runs ~30 min; at the 15-min default every request after it
            # was a 401 — counted as refused, and no recovery seen).
            "VIGIL_ACCESS_TOKEN_TTL_S": str(6 * 3600),
        },
    ) as made:
        yield made


@pytest.fixture(scope="session")
def cluster(
    target: Target, validation_config: ValidationConfig, dr_config: DisasterRecoveryConfig
) -> Iterator[ClusterDeployment]:
    """The cluster scenarios' own small cluster (one per session: it takes a while to start)."""
    if target.kind != "cluster":
        pytest.skip("the cluster scenarios run with the cluster target (`vigil validate … --cluster`)")
    summary = handover.summary_path_from_env()
    log_dir = (Path(summary).parent if summary else Path("/tmp")) / "disaster_recovery" / "cluster"
    # The server's default deadline (30 s): nothing here blackholes a link, and a cluster of eight processes on two
    # loaded cores answers job polls slower than the single deployment's short deadline.
    with cluster_deployment(config=validation_config.cluster, log_dir=log_dir, request_timeout_s=30.0) as made:
        yield made


@pytest.fixture
def analyst(cluster: ClusterDeployment, validation_config: ValidationConfig) -> Iterator[VigilClient]:
    """An analyst of a fresh tenant on the cluster, healed and with every process running again."""
    for process in (*cluster.apis, *cluster.workers):
        if process.process is None or process.process.poll() is not None:
            process.restart(wait=process.command == "serve")
    cluster.proxy.heal_all()
    admin = cluster.admin()
    suffix = uuid.uuid4().hex[:10]
    tenant = admin.create_tenant(f"dr-cluster-{suffix}")
    email = f"analyst-{suffix}@dr.example.com"
    admin.create_user(email, validation_config.security.password, role="analyst", tenant_id=tenant["id"])
    client = cluster.client(retries=4)
    client.login(email, validation_config.security.password)
    yield client
    client.close()
    admin.close()


def restore(dr: Deployment) -> None:
    """Heals every link and brings back whatever a test broke: the next test starts on a healthy deployment."""
    dr.proxy.heal_all()
    if dr.postgres is not None and dr.postgres.process is None:
        dr.postgres.start()
    if dr.api.process is None or dr.api.process.poll() is not None:
        dr.api.restart()
    dr.api.thaw()
    dr.api.wait_ready()


@pytest.fixture
def healthy(dr: Deployment) -> Iterator[Deployment]:
    restore(dr)
    yield dr
    restore(dr)


DR_QUOTAS = {"datasets": 1_000_000, "detectors": 1_000_000, "api_calls_per_hour": 50_000_000, "storage_bytes": 2**40}


@dataclass
class DRTenant:
    id: str
    analyst: VigilClient


TenantFactory = Callable[[], DRTenant]


@pytest.fixture
def dr_tenants(healthy: Deployment, validation_config: ValidationConfig) -> Iterator[TenantFactory]:
    admin = healthy.admin(timeout=30)
    made: list[DRTenant] = []

    def make() -> DRTenant:
        suffix = uuid.uuid4().hex[:10]
        tenant = admin.create_tenant(f"dr-{suffix}")
        # The workload writes as fast as faults let it, for as long as the schedule runs: quotas an operator would
        # raise for such a tenant, so a quota's 403 (not a fault) never stands for a refusal.
        admin.call("PATCH", f"/api/v1/tenants/{tenant['id']}", json={"quotas": DR_QUOTAS})
        email = f"analyst-{suffix}@dr.example.com"
        admin.create_user(email, validation_config.security.password, role="analyst", tenant_id=tenant["id"])
        client = healthy.client(timeout=30)
        client.login(email, validation_config.security.password)
        made.append(DRTenant(id=tenant["id"], analyst=client))
        return made[-1]

    yield make
    for tenant in made:
        tenant.analyst.close()
    admin.close()


def wait_recovered(timeline: Timeline, after: float, *, limit_s: float) -> float | None:
    """Waits (up to `limit_s`) until the prober has seen a successful read and write after `after`."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        rto = timeline.recovery_s(after)
        if rto is not None:
            return rto
        time.sleep(0.2)
    return timeline.recovery_s(after)


def record_verdict(record: Recorder, verdict: Verdict, *, faults: int, rtos: list[float]) -> None:
    """The figures every scenario reports (summed over scenarios in the summary's `disaster_recovery` totals)."""
    record("faults injected", faults)
    for name, value in verdict.counts().items():
        record(name.replace("_", " "), value)
    if verdict.jobs:
        record("jobs ended after", verdict.jobs_end_s, "s")
    if verdict.blobs is not None:
        record("orphan blob bytes swept", verdict.blobs.swept_bytes, "B")
    if rtos:
        record("RTO p50", percentile(rtos, 0.5), "s")
        record("RTO max", max(rtos), "s")


def assert_consistent(verdict: Verdict, *, scenario: str) -> None:
    """Jepsen's checks on what a scenario's workload saw: nothing acknowledged lost, nothing applied twice or
    wrongly, nothing in another tenant, every unacknowledged write completable by a retry with its key."""
    assert verdict.acknowledged > 0, f"no write was acknowledged: {scenario} tested nothing"
    assert not verdict.lost, f"acknowledged writes lost: {verdict.lost[:5]}"
    assert not verdict.duplicated, f"writes applied twice: {verdict.duplicated[:5]}"
    assert not verdict.wrong, f"writes stored wrongly: {verdict.wrong[:5]}"
    assert not verdict.leaked, f"writes seen in another tenant: {verdict.leaked[:5]}"
    assert not verdict.unfinishable, f"unacknowledged writes a retry cannot complete: {verdict.unfinishable[:5]}"
    assert not verdict.unended, f"jobs that did not end: {verdict.unended[:5]}"
    assert not verdict.failed_jobs, f"jobs that did not succeed: {verdict.failed_jobs[:5]}"
    if verdict.blobs is not None:
        assert not verdict.blobs.missing, f"rows whose blob is missing: {verdict.blobs.missing[:5]}"
        assert verdict.blobs.left == 0, f"{verdict.blobs.left} orphan blob(s) left after a sweep with no grace"
