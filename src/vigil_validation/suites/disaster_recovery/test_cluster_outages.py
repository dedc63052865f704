"""Outages of the scaled-out topology's own dependencies (cluster runs only): the object store down — uploads are
answered 503 + `Retry-After` at once, nothing is half-written, and the same upload succeeds once it is back; the
workers partitioned from the broker (the API processes still reach it) — trainings are accepted meanwhile, and
after the partition heals each runs exactly once."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from vigil.client import NO_RETRY, VigilClient
from vigil.client.models import Dataset
from vigil_validation.config import DisasterRecoveryConfig
from vigil_validation.faults import Blackhole, Down
from vigil_validation.plugin import Recorder
from vigil_validation.suites.disaster_recovery.cluster_deployment import ClusterDeployment
from vigil_validation.suites.disaster_recovery.test_cluster_failover import JOB_WAIT_S, train
from vigil_validation.suites.disaster_recovery.writes import ROWS, csv_for

pytestmark = [pytest.mark.managed_only, pytest.mark.destructive, pytest.mark.slow]
TRAININGS = 4


def _upload(client: VigilClient, name: str, key: str) -> httpx.Response:
    return client.send(
        "POST",
        "/api/v1/datasets",
        content=csv_for(name),
        params={"name": name},
        headers={"Content-Type": "text/csv", "Idempotency-Key": key},
    )


def _named(client: VigilClient, name: str) -> list[Dataset]:
    return [item for item in client.datasets.iter_all(page_size=100) if item.name == name]


def test_object_store_down_uploads_answer_503_and_nothing_is_half_written(
    cluster: ClusterDeployment, analyst: VigilClient, dr_config: DisasterRecoveryConfig, record: Recorder
) -> None:
    name, key = f"dr-s3-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    before = sum(1 for _ in analyst.datasets.iter_all(page_size=100))
    retry, analyst.retry = analyst.retry, NO_RETRY  # one attempt: the fixture's client retries a keyed 503 itself
    with cluster.links["s3"].fault(Down()):
        started = time.monotonic()
        during = _upload(analyst, name, key)
        answered_s = time.monotonic() - started
        analyst.retry = retry
        ready = httpx.get(f"{cluster.apis[0].url}/ready", timeout=30)
        health = httpx.get(f"{cluster.apis[0].url}/health", timeout=30)
        # Nothing half-written: no dataset row for an upload whose file could not be stored.
        assert sum(1 for _ in analyst.datasets.iter_all(page_size=100)) == before
        healed_at = time.monotonic()
    record("upload answered during the outage in", answered_s, "s")
    assert during.status_code == 503, during.text
    assert during.headers["content-type"].startswith("application/problem+json")
    assert int(during.headers["retry-after"]) > 0
    assert answered_s <= dr_config.answer_within_s
    assert ready.status_code == 503, ready.text
    assert health.status_code == 200
    # Back: the same upload, retried with its key as a client would (honouring Retry-After), is stored once.
    deadline = healed_at + dr_config.recovery_time_objective_s
    after = _upload(analyst, name, key)
    while after.status_code in (409, 503) and time.monotonic() < deadline:
        time.sleep(0.2)
        after = _upload(analyst, name, key)
    rto = time.monotonic() - healed_at
    record("RTO", rto, "s")
    assert after.status_code == 201, after.text
    assert rto <= dr_config.recovery_time_objective_s
    stored = _named(analyst, name)
    assert [item.id for item in stored] == [after.json()["id"]]
    assert stored[0].rows == ROWS


def _versions(client: VigilClient, detector_id: str) -> int:
    return len(client.detectors.versions(detector_id)["items"])


def _first_succeeded(client: VigilClient, jobs: list[str], *, since: float) -> float | None:
    """Seconds from `since` until one of the jobs has succeeded (None if none has within JOB_WAIT_S)."""
    while time.monotonic() < since + JOB_WAIT_S:
        if any(client.jobs.get(job_id)["status"] == "succeeded" for job_id in jobs):
            return time.monotonic() - since
        time.sleep(0.2)
    return None


def test_workers_partitioned_from_the_broker_jobs_run_once_after_it_heals(
    cluster: ClusterDeployment, analyst: VigilClient, dr_config: DisasterRecoveryConfig, record: Recorder
) -> None:
    with cluster.links["broker-workers"].fault(Blackhole()):
        jobs = [train(analyst, rows=300, estimators=20) for _ in range(TRAININGS)]  # accepted: the API reaches it
        time.sleep(dr_config.fault_duration_s)
        during = [str(analyst.jobs.get(job_id)["status"]) for job_id in jobs]
        healed_at = time.monotonic()
    rto = _first_succeeded(analyst, jobs, since=healed_at)
    ended = [analyst.jobs.wait(job_id, timeout=JOB_WAIT_S) for job_id in jobs]
    record("faults injected", 1)
    record("jobs", len(jobs))
    record("all jobs done after healing", time.monotonic() - healed_at, "s")
    if rto is not None:
        record("RTO", rto, "s")
    assert set(during) == {"queued"}, f"jobs ran while no worker could reach the broker: {during}"
    assert rto is not None, "no job ran after the partition healed"
    assert rto <= dr_config.recovery_time_objective_s
    assert [job["status"] for job in ended] == ["succeeded"] * TRAININGS, ended
    # Each ran once: one model version per training (a message delivered twice is claimed once).
    for job in ended:
        assert _versions(analyst, str(job["subject_id"])) == 1, job
