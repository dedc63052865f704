"""Failover on the scaled-out topology (cluster runs only): a worker SIGKILLed mid-job — another finishes the job;
one of two API processes SIGKILLed — the SDK's retries carry every idempotent request to the other, nothing
acknowledged is lost; the broker down — jobs are still accepted (the outbox) and run once it is back."""

from __future__ import annotations

import contextlib
import io
import time
import uuid

import numpy as np
import pytest

from vigil.client import VigilClient
from vigil_validation.config import DisasterRecoveryConfig
from vigil_validation.faults import Down
from vigil_validation.plugin import Recorder
from vigil_validation.suites.disaster_recovery.checker import Workload, check
from vigil_validation.suites.disaster_recovery.cluster_deployment import ClusterDeployment
from vigil_validation.suites.disaster_recovery.conftest import record_verdict

pytestmark = [pytest.mark.managed_only, pytest.mark.destructive, pytest.mark.slow]
JOB_WAIT_S = 180.0


def _training_set(rows: int) -> bytes:
    rng = np.random.default_rng(7)
    frame = rng.normal(size=(rows, 8))
    out = io.StringIO()
    np.savetxt(out, frame, delimiter=",", header=",".join(f"f{i}" for i in range(8)), comments="", fmt="%.5f")
    return out.getvalue().encode()


def train(client: VigilClient, rows: int, estimators: int) -> str:
    dataset = client.datasets.upload(_training_set(rows), name=f"dr-train-{uuid.uuid4().hex[:8]}")
    detector = client.detectors.create(
        name=f"dr-{uuid.uuid4().hex[:8]}", algorithm="iforest", parameters={"n_estimators": estimators}
    )
    job = client.detectors.train(detector["id"], dataset["id"], idempotency_key=uuid.uuid4().hex)
    return str(job["id"])


def _status(client: VigilClient, job_id: str) -> dict[str, object]:
    return client.jobs.get(job_id).to_dict()


def test_a_worker_killed_mid_job_another_finishes_it(cluster: ClusterDeployment, analyst: VigilClient) -> None:
    # The second worker is frozen until the first has taken the job, so the job is known to run on the first.
    cluster.workers[1].freeze()
    try:
        job_id = train(analyst, rows=40_000, estimators=600)
        deadline = time.monotonic() + JOB_WAIT_S
        while _status(analyst, job_id)["status"] != "running":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.2)
        cluster.workers[0].crash()
    finally:
        cluster.workers[1].thaw()
    job = analyst.jobs.wait(job_id, timeout=JOB_WAIT_S)
    assert job["status"] == "succeeded", job
    assert int(str(job["attempts"])) >= 2, "the job was not taken over after its worker died"
    cluster.workers[0].restart(wait=False)


def test_one_api_process_killed_the_sdk_retries_on_the_other(
    cluster: ClusterDeployment, analyst: VigilClient, dr_config: DisasterRecoveryConfig, record: Recorder
) -> None:
    workload = Workload(clients={"t": analyst}, seed=dr_config.seed, writers=2)
    workload.start()
    try:
        time.sleep(1.0)
        cluster.apis[1].crash()
        time.sleep(3.0)
    finally:
        workload.stop()
    cluster.apis[1].start()
    verdict = check(workload.history, {"t": analyst})
    record_verdict(record, verdict, faults=1, rtos=[])
    assert verdict.acknowledged > 0
    assert not verdict.lost, verdict.lost[:5]
    assert not verdict.duplicated, verdict.duplicated[:5]
    assert not verdict.wrong, verdict.wrong[:5]
    assert not verdict.unfinishable, verdict.unfinishable[:5]
    # With retries on, the other process answers everything but the writes the dead one was running at the kill:
    # their retry finds the key claimed (409) until the dead request's lease runs out, then completes (checked
    # above: none unfinishable). At most one such write per writer.
    unanswered = [(w.name, w.status) for w in workload.history if w.outcome != "ack"]
    assert len(unanswered) <= workload.writers, f"writes went unanswered despite the other API process: {unanswered}"


def test_broker_down_jobs_are_accepted_and_run_when_it_returns(
    cluster: ClusterDeployment, analyst: VigilClient, dr_config: DisasterRecoveryConfig, record: Recorder
) -> None:
    with contextlib.ExitStack() as stack:
        for link in ("broker", "broker-workers"):  # the broker is gone, for everyone
            stack.enter_context(cluster.links[link].fault(Down()))
        job_id = train(analyst, rows=500, estimators=50)  # accepted: the job row is the outbox
        time.sleep(dr_config.fault_duration_s)
        assert _status(analyst, job_id)["status"] == "queued"
        healed_at = time.monotonic()
    job = analyst.jobs.wait(job_id, timeout=JOB_WAIT_S)
    record("broker recovery to job done", time.monotonic() - healed_at, "s")
    assert job["status"] == "succeeded", job
