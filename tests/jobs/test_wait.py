"""Jobs a user can wait for: the bounded long-poll (`GET /jobs/{id}?wait=N`), the stage a job reports and its ETA."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant, make_settings
from tests.detectors.test_workflow import breastw, upload
from tests.jobs.conftest import TENANT, enqueue, wait
from tests.jobs.test_cancel_queued import queued_training
from vigil.app import create_app
from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.core.errors import NotFound
from vigil.jobs.lifecycle import JobLifecycle
from vigil.jobs.registry import JobContext, JobOutcome, JobRegistry
from vigil.jobs.runner import InProcessRunner
from vigil.jobs.service import wait_for_job

release = threading.Event()


def staged(ctx: JobContext) -> JobOutcome:
    ctx.progress(10, "loading data")
    ctx.progress(25, "fitting")  # a new stage is written at once, however soon after the last report
    release.wait(30)
    return JobOutcome(result={"done": True})


@pytest.fixture
def runner(app: AppContext) -> Iterator[InProcessRunner]:
    registry = JobRegistry()
    registry.register("staged", staged)
    release.clear()
    runner = InProcessRunner(app=app, lifecycle=JobLifecycle(app=app, registry=registry), workers=1)
    runner.start()
    yield runner
    release.set()
    runner.stop()


def look(app: AppContext, job_id: str, wait_s: float) -> dict[str, object]:
    async def main() -> dict[str, object]:
        job = await wait_for_job(app=app, scope=TenantScope(TENANT), job_id=job_id, wait_s=wait_s)
        return job.model_dump()

    return anyio.run(main)


def test_a_running_job_says_its_stage_and_an_eta(app: AppContext, runner: InProcessRunner) -> None:
    job_id = enqueue(app, "staged")
    wait(app, job_id, statuses=("running",))
    deadline_job = look(app, job_id, wait_s=0.3)  # bounded: a job that does not end is answered as it is
    assert deadline_job["status"] == "running"
    for _ in range(200):
        job = look(app, job_id, wait_s=0)
        if job["stage"] == "fitting":
            break
    assert (job["stage"], job["progress"]) == ("fitting", 25)
    eta = job["eta_s"]
    assert isinstance(eta, float)
    assert eta >= 0
    release.set()
    finished = look(app, job_id, wait_s=30)
    assert finished["status"] == "succeeded"
    assert finished["eta_s"] is None
    assert finished["result"] == {"done": True}


def test_waiting_on_another_tenants_job_is_404(app: AppContext, runner: InProcessRunner) -> None:
    job_id = enqueue(app, "staged")
    release.set()

    async def main() -> None:
        await wait_for_job(app=app, scope=TenantScope("tnt_other"), job_id=job_id, wait_s=1)

    with pytest.raises(NotFound):
        anyio.run(main)


def test_wait_returns_the_finished_training_in_one_request(client: TestClient, tenant: Tenant) -> None:
    frame, _ = breastw()
    dataset_id = upload(client, tenant.analyst, frame.head(200))
    detector = client.post(
        "/api/v1/detectors",
        json={"name": "d", "algorithm": "iforest", "contamination": 0.1},
        headers=tenant.analyst,
    ).json()
    job = client.post(
        f"/api/v1/detectors/{detector['id']}/train", json={"dataset_id": dataset_id}, headers=tenant.analyst
    ).json()
    answered = client.get(f"/api/v1/jobs/{job['id']}?wait=60", headers=tenant.viewer)
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["status"] == "succeeded", body
    assert body["stage"] == "saving the model"  # the last stage it reported
    assert body["progress"] == 100


@pytest.mark.parametrize("wait_s", ["-1", "61", "soon"])
def test_a_wait_out_of_bounds_is_refused(client: TestClient, tenant: Tenant, wait_s: str) -> None:
    response = client.get(f"/api/v1/jobs/job_missing?wait={wait_s}", headers=tenant.viewer)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_a_long_poll_is_answered_before_the_request_deadline(tmp_path: Path) -> None:
    # A job nobody runs (no worker threads: it stays queued), a long-poll longer than the server's request deadline:
    # answered with the job as it is, not cut with the deadline's 503.
    settings = make_settings(tmp_path / "data", request_timeout_s=5, job_workers=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        tenant, job, _ = queued_training(client)
        answered = client.get(f"/api/v1/jobs/{job['id']}?wait=20", headers=tenant.viewer)
        assert answered.status_code == 200, answered.text
        assert answered.json()["status"] == "queued"
