"""Celery workers as real processes on PostgreSQL and RabbitMQ: jobs leave the API process, and every way a worker
can fail — SIGKILL mid-training, a cancel, a hang past the hard limit, memory beyond the cap, a job that kills its
own process each time, a soft limit — ends the job as it should, with the domain's state made consistent."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Tenant, bearer, login, provision_tenant
from tests.detectors.test_workflow import upload
from tests.jobs.conftest import enqueue, read, wait
from tests.jobs.kinds import ECHO, HANG, HANG_LIMIT_S, HOG, SPIN, SUICIDE
from tests.jobs.workers import Deployment
from vigil import ml
from vigil.core.database import bind_platform
from vigil.datasets.formats import ROW_GROUP_ROWS
from vigil.datasets.models import Dataset
from vigil.detectors.models import ModelVersion

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.scaleout]
# "A running fit stops within 2 s" (issue 11): a deadline for a loaded machine, not a measurement.
STOP_DEADLINE_S = 2.0


def test_jobs_run_in_worker_processes_not_in_the_api(cluster: Deployment) -> None:
    nodes = cluster.wait_nodes(2)
    job = wait(cluster.app, enqueue(cluster.app, ECHO, {"value": 41}))
    assert job.status == "succeeded", job.error
    assert job.result is not None
    assert job.result["echo"] == 41
    assert job.result["pid"] != os.getpid()
    assert job.worker_id in {node.id for node in nodes}
    assert job.attempts == 1


# -- a real training, killed or cancelled mid-fit ------------------------------------------------------------
def _training(cluster: Deployment, *, rows: int, trees: int) -> tuple[Tenant, str, str]:
    """A tenant, a detector and a training job of it on `rows` random rows (long enough to be caught running)."""
    tenant = provision_tenant(cluster.client, bearer(login(cluster.client, ADMIN_EMAIL, ADMIN_PASSWORD)))
    rng = np.random.default_rng(7)
    frame = pl.DataFrame({f"f{i}": rng.normal(size=rows) for i in range(6)})
    dataset_id = upload(cluster.client, tenant.analyst, frame, name="big")
    created = cluster.client.post(
        "/api/v1/detectors",
        json={"name": "slow", "algorithm": "iforest", "parameters": {"n_estimators": trees}, "contamination": 0.1},
        headers=tenant.analyst,
    )
    assert created.status_code == 201, created.text
    detector_id = created.json()["id"]
    job = cluster.client.post(
        f"/api/v1/detectors/{detector_id}/train", json={"dataset_id": dataset_id}, headers=tenant.analyst
    )
    assert job.status_code == 202, job.text
    return tenant, detector_id, job.json()["id"]


def test_sigkill_of_a_worker_mid_training_hands_the_job_to_another(cluster: Deployment) -> None:
    cluster.wait_nodes(2)
    tenant, detector_id, job_id = _training(cluster, rows=20_000, trees=300)
    running = wait(cluster.app, job_id, ("running",))
    victim = cluster.worker_of(running.worker_id or "")
    victim.kill_group()  # main process and its children: the machine died mid-fit
    cluster.add_worker()  # its replacement, for the next tests (this job goes to the surviving one)
    job = wait(cluster.app, job_id, timeout=180)
    assert job.status == "succeeded", job.error
    assert job.attempts == 2, "requeued once, after its lease ran out"
    assert job.worker_id != running.worker_id
    assert job.last_error is not None
    assert "lease" in job.last_error["detail"]
    detector = cluster.client.get(f"/api/v1/detectors/{detector_id}", headers=tenant.viewer).json()
    assert (detector["status"], detector["current_version"]) == ("trained", 1)


def test_cancel_of_a_running_training_kills_its_process_and_runs_the_failure_hook(
    cluster: Deployment,
) -> None:
    cluster.wait_nodes(2)
    tenant, detector_id, job_id = _training(cluster, rows=50_000, trees=2000)
    running = wait(cluster.app, job_id, ("running",))
    assert running.worker_pid is not None
    child = running.worker_pid
    answer = cluster.client.post(f"/api/v1/jobs/{job_id}/cancel", headers=tenant.analyst)
    cancelled_at = time.monotonic()
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "cancelled"
    # The failure hook ran in the cancel's own transaction: the detector is not left "training".
    detector = cluster.client.get(f"/api/v1/detectors/{detector_id}", headers=tenant.viewer).json()
    assert detector["status"] == "created"
    while _alive(child) and time.monotonic() - cancelled_at < STOP_DEADLINE_S:
        time.sleep(0.05)
    stopped_after = time.monotonic() - cancelled_at
    assert not _alive(child), f"the fit's process still runs {stopped_after:.1f}s after the cancel"
    # Nothing it did is recorded afterwards, and the worker goes on serving.
    assert wait(cluster.app, enqueue(cluster.app, ECHO, {"value": 1})).status == "succeeded"
    job = read(cluster.app, job_id)
    assert job.status == "cancelled"
    assert (
        cluster.client.get(f"/api/v1/detectors/{detector_id}", headers=tenant.viewer).json()["current_version"] is None
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by the worker) no longer runs anything.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


# -- limits, memory, poison ----------------------------------------------------------------------------------
def test_a_hung_job_is_killed_at_its_hard_time_limit(cluster: Deployment) -> None:
    cluster.wait_nodes(2)
    job_id = enqueue(cluster.app, HANG)
    child = wait(cluster.app, job_id, ("running",)).worker_pid
    job = wait(cluster.app, job_id, timeout=60)
    assert job.status == "failed"
    assert job.error is not None
    assert job.error["type"] == "/problems/job-time-limit"
    assert (job.error["limit"], job.error["limit_s"]) == ("hard", HANG_LIMIT_S)
    assert child is not None
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the hung process was not killed"
    assert wait(cluster.app, enqueue(cluster.app, ECHO, {"value": 2})).status == "succeeded"


def test_a_job_past_its_soft_limit_fails_with_a_clear_problem(cluster: Deployment) -> None:
    cluster.wait_nodes(2)
    job = wait(cluster.app, enqueue(cluster.app, SPIN), timeout=60)
    assert job.status == "failed"
    assert job.error is not None
    assert (job.error["type"], job.error["limit"]) == ("/problems/job-time-limit", "soft")


def test_a_job_beyond_the_memory_cap_fails_and_the_worker_lives_on(cluster: Deployment) -> None:
    cluster.wait_nodes(2)
    job = wait(cluster.app, enqueue(cluster.app, HOG, {"mb": 4096}), timeout=60)
    assert job.status == "failed"
    assert job.error is not None
    assert (job.error["type"], job.error["limit_mb"]) == ("/problems/job-out-of-memory", 2048)
    # Within the cap, the same kind of job is fine: the cap is what stopped it, not the job's code.
    small = wait(cluster.app, enqueue(cluster.app, HOG, {"mb": 64}), timeout=60)
    assert small.status == "succeeded", small.error
    assert len(cluster.live_workers()) == 2


def test_a_poison_job_fails_after_its_attempts_with_the_last_reason(cluster: Deployment) -> None:
    cluster.wait_nodes(2)
    job = wait(cluster.app, enqueue(cluster.app, SUICIDE), timeout=120)
    assert job.status == "failed"
    assert job.attempts == 3
    assert job.error is not None
    assert job.error["type"] == "/problems/job-interrupted"
    assert job.error["attempts"] == 3
    assert "lost" in job.error["last_error"]["detail"]
    assert wait(cluster.app, enqueue(cluster.app, ECHO, {"value": 3})).status == "succeeded"


# -- partitioned scoring -------------------------------------------------------------------------------------
def test_scoring_a_big_dataset_fans_out_and_equals_the_single_process_result(cluster: Deployment) -> None:
    cluster.wait_nodes(2)
    tenant = provision_tenant(cluster.client, bearer(login(cluster.client, ADMIN_EMAIL, ADMIN_PASSWORD)))
    rng = np.random.default_rng(11)
    rows = 2 * ROW_GROUP_ROWS + 5_000  # three row groups: two parts of ~250,000 rows' worth of groups
    frame = pl.DataFrame({f"f{i}": rng.normal(size=rows) for i in range(4)})
    dataset_id = upload(cluster.client, tenant.analyst, frame, name="wide")
    detector = cluster.client.post(
        "/api/v1/detectors",
        json={"name": "d", "algorithm": "iforest", "parameters": {"n_estimators": 25}, "contamination": 0.05},
        headers=tenant.analyst,
    ).json()
    training = cluster.client.post(
        f"/api/v1/detectors/{detector['id']}/train", json={"dataset_id": dataset_id}, headers=tenant.analyst
    ).json()
    assert wait(cluster.app, training["id"], timeout=120).status == "succeeded"
    answer = cluster.client.post(
        f"/api/v1/detectors/{detector['id']}/detect", json={"dataset_id": dataset_id}, headers=tenant.analyst
    )
    assert answer.status_code == 202, answer.text
    job = wait(cluster.app, answer.json()["id"], timeout=180)
    assert job.status == "succeeded", job.error
    assert job.result is not None
    assert job.result["partitions"] == 2
    assert job.result["total"] == rows
    assert job.progress == 100
    # The same model, scoring the whole frame in this one process:
    version = cluster.client.get(f"/api/v1/detectors/{detector['id']}/versions", headers=tenant.viewer).json()
    model = ml.load_artifact(
        cluster.app.blobs.get_bytes(_artifact_key(cluster, version["items"][0]["id"])), key=cluster.app.artifact_key
    )
    expected = model.score(frame)
    stored = pl.read_parquet(cluster.app.blobs.local_path(_dataset_key(cluster, job.result["result_dataset_id"])))
    assert stored.height == rows
    assert stored.select(frame.columns).equals(frame), "rows out of order or altered"
    assert np.array_equal(stored["score"].to_numpy(), expected), "partitioned scores differ from the whole"
    assert np.array_equal(stored["is_anomaly"].to_numpy(), expected > model.threshold)
    assert job.result["anomalies"] == int((expected > model.threshold).sum())
    # The parts' scratch files are gone.
    assert not list((cluster.settings.blob_root / "tenants" / tenant.id / "jobs").rglob("*.parquet"))


def _artifact_key(cluster: Deployment, version_id: str) -> str:
    with cluster.app.database.session() as session:
        bind_platform(session)
        version = session.get(ModelVersion, version_id)
        assert version is not None
        return version.artifact_key


def _dataset_key(cluster: Deployment, dataset_id: str) -> str:
    with cluster.app.database.session() as session:
        bind_platform(session)
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        return dataset.blob_key
