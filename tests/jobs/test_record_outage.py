"""A job that meets a database outage — ending while the database is unavailable, being loaded, or in its handler's
own reads — is run or recorded when it returns: not left `running` for good by a worker that stays alive, nor failed
for what was not its fault (found by the disaster-recovery suite on PostgreSQL: trainings stuck running, or failed
with OperationalError, after a database crash)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from tests.jobs.conftest import enqueue, read, wait
from vigil.core.context import AppContext
from vigil.jobs import lifecycle as lifecycle_module
from vigil.jobs.lifecycle import JobLifecycle
from vigil.jobs.registry import JobContext, JobOutcome, JobRegistry
from vigil.jobs.runner import InProcessRunner

OUTAGE_ATTEMPTS = 3
flaky_runs = {"count": 0}


def _refused() -> OperationalError:
    return OperationalError("SELECT", {}, Exception("connection refused"))


def answer(ctx: JobContext) -> JobOutcome:
    return JobOutcome(result={"answer": 42})


def flaky(ctx: JobContext) -> JobOutcome:
    """Its own reads meet the outage on its first runs."""
    flaky_runs["count"] += 1
    if flaky_runs["count"] <= OUTAGE_ATTEMPTS:
        raise _refused()
    return JobOutcome(result={"answer": 42})


@pytest.fixture
def runner(app: AppContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessRunner]:
    monkeypatch.setattr(lifecycle_module, "RECORD_OUTAGE_RETRY_S", 0.05)
    flaky_runs["count"] = 0
    registry = JobRegistry()
    registry.register("answer", answer)
    registry.register("flaky", flaky)
    runner = InProcessRunner(app=app, lifecycle=JobLifecycle(app=app, registry=registry), workers=1)
    runner.start()
    yield runner
    runner.stop()


def _outage_for(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """`JobLifecycle.<method>` meets a database that refuses connections its first OUTAGE_ATTEMPTS times."""
    real = getattr(JobLifecycle, method)
    refused = {"count": 0}

    def through_an_outage(self: JobLifecycle, job_id: str, **kwargs: Any) -> Any:
        if refused["count"] < OUTAGE_ATTEMPTS:
            refused["count"] += 1
            raise _refused()
        return real(self, job_id, **kwargs)

    monkeypatch.setattr(JobLifecycle, method, through_an_outage)


@pytest.mark.parametrize("method", ["finish", "load"])
def test_a_job_is_run_and_recorded_once_the_database_is_back(
    app: AppContext, monkeypatch: pytest.MonkeyPatch, method: str, runner: InProcessRunner
) -> None:
    _outage_for(monkeypatch, method)
    job_id = enqueue(app, "answer")
    job = wait(app, job_id)
    assert (job.status, read(app, job_id).result) == ("succeeded", {"answer": 42})


def test_a_handler_that_meets_an_outage_runs_again_not_failed(app: AppContext, runner: InProcessRunner) -> None:
    job_id = enqueue(app, "flaky")
    job = wait(app, job_id)
    assert (job.status, job.result) == ("succeeded", {"answer": 42})
    assert flaky_runs["count"] == OUTAGE_ATTEMPTS + 1
