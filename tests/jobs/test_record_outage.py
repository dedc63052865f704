"""A job that ends while the database is unavailable is recorded when it returns — not left `running` for good by a
worker that stays alive (found by the disaster-recovery suite: a training stuck running after a database outage)."""

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


def answer(ctx: JobContext) -> JobOutcome:
    return JobOutcome(result={"answer": 42})


@pytest.fixture
def runner(app: AppContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessRunner]:
    """A runner whose first attempts to record an outcome meet a database that refuses connections."""
    monkeypatch.setattr(lifecycle_module, "RECORD_OUTAGE_RETRY_S", 0.05)
    real_finish = JobLifecycle.finish
    refused = {"count": 0}

    def finish_through_an_outage(self: JobLifecycle, job_id: str, **kwargs: Any) -> bool:
        if refused["count"] < OUTAGE_ATTEMPTS:
            refused["count"] += 1
            raise OperationalError("UPDATE jobs", {}, Exception("connection refused"))
        return real_finish(self, job_id, **kwargs)

    monkeypatch.setattr(JobLifecycle, "finish", finish_through_an_outage)
    registry = JobRegistry()
    registry.register("answer", answer)
    runner = InProcessRunner(app=app, lifecycle=JobLifecycle(app=app, registry=registry), workers=1)
    runner.start()
    yield runner
    runner.stop()


def test_an_outcome_is_recorded_once_the_database_is_back(app: AppContext, runner: InProcessRunner) -> None:
    job_id = enqueue(app, "answer")
    job = wait(app, job_id)
    assert job.status == "succeeded"
    assert read(app, job_id).result == {"answer": 42}
