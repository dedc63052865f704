"""The in-process job runner on a real database: claiming, progress, cancellation, failure, crash recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.jobs.conftest import TENANT, enqueue, wait
from vigil.core.context import AppContext
from vigil.core.database import TenantScope, bind_platform, utcnow
from vigil.core.errors import InvalidInput
from vigil.jobs.keeper import job_metrics, prune_job_records
from vigil.jobs.lifecycle import JobLifecycle
from vigil.jobs.models import Job
from vigil.jobs.registry import JobContext, JobOutcome, JobRegistry
from vigil.jobs.runner import InProcessRunner
from vigil.jobs.service import JobService


def registry() -> JobRegistry:
    reg = JobRegistry()

    def echo(ctx: JobContext) -> JobOutcome:
        ctx.progress(50)
        return JobOutcome(result={"echo": ctx.payload["value"], "tenant": ctx.scope.tenant_id})

    def slow(ctx: JobContext) -> JobOutcome:
        for step in range(400):
            ctx.progress(step / 4)
            time.sleep(0.01)
        return JobOutcome(result={})

    def broken(ctx: JobContext) -> JobOutcome:
        raise InvalidInput("column 'x' is not numeric")

    def crash(ctx: JobContext) -> JobOutcome:
        raise RuntimeError("secret internals /etc/passwd")

    for name, fn in {"echo": echo, "slow": slow, "broken": broken, "crash": crash}.items():
        reg.register(name, fn)
    return reg


def make_runner(app: AppContext, workers: int) -> InProcessRunner:
    return InProcessRunner(app=app, lifecycle=JobLifecycle(app=app, registry=registry()), workers=workers)


@pytest.fixture
def runner(app: AppContext) -> Iterator[InProcessRunner]:
    runner = make_runner(app, workers=2)
    runner.start()
    yield runner
    runner.stop()


def test_a_job_runs_to_success_with_its_result(app: AppContext, runner: InProcessRunner) -> None:
    job = wait(app, enqueue(app, "echo", {"value": 7}))
    assert job.status == "succeeded"
    assert job.result == {"echo": 7, "tenant": TENANT}
    assert job.progress == 100
    assert job.started_at is not None
    assert job.finished_at is not None
    assert job.started_at <= job.finished_at


def test_failures_keep_the_reason_but_not_internals(app: AppContext, runner: InProcessRunner) -> None:
    broken = wait(app, enqueue(app, "broken"))
    assert broken.status == "failed"
    assert broken.error is not None
    assert broken.error["detail"] == "column 'x' is not numeric"
    crashed = wait(app, enqueue(app, "crash"))
    assert crashed.error is not None
    assert "/etc/passwd" not in str(crashed.error)
    unknown = wait(app, enqueue(app, "no-such-kind"))
    assert unknown.status == "failed"


def test_a_running_job_can_be_cancelled(app: AppContext, runner: InProcessRunner) -> None:
    job_id = enqueue(app, "slow")
    wait(app, job_id, ("running",))
    with app.database.session() as session:
        JobService(session=session, scope=TenantScope(TENANT), app=app).cancel(job_id=job_id)
    assert wait(app, job_id).status == "cancelled"


def test_each_job_is_claimed_once(app: AppContext) -> None:
    runners = [make_runner(app, workers=2) for _ in range(2)]
    for r in runners:
        # Started before any work exists: on SQLite a starting runner owns the database and requeues what it finds
        # running, so two runners must not start while the other is busy (one server per SQLite file).
        r.start()
    ids = [enqueue(app, "echo", {"value": n}) for n in range(20)]
    try:
        jobs = [wait(app, job_id) for job_id in ids]
    finally:
        for r in runners:
            r.stop()
    assert all(job.status == "succeeded" and job.attempts == 1 for job in jobs)


def test_a_job_left_running_by_a_dead_server_is_picked_up(app: AppContext) -> None:
    job_id = enqueue(app, "echo", {"value": 1})
    with app.database.session() as session:  # what a killed server leaves behind
        bind_platform(session)
        job = session.get(Job, job_id)
        assert job is not None
        job.status, job.worker_id, job.attempts = "running", "dead-host:1:x", 1
        job.started_at = job.heartbeat_at = utcnow() - timedelta(seconds=app.settings.job_lease_s * 2)
    runner = make_runner(app, workers=1)
    runner.start()
    try:
        job = wait(app, job_id)
    finally:
        runner.stop()
    assert job.status == "succeeded"
    assert job.attempts == 2


def test_a_job_that_keeps_dying_is_given_up(app: AppContext) -> None:
    job_id = enqueue(app, "echo", {"value": 1})
    with app.database.session() as session:
        bind_platform(session)
        job = session.get(Job, job_id)
        assert job is not None
        job.status, job.worker_id, job.attempts = "running", "dead-host:1:x", job.max_attempts
        job.heartbeat_at = utcnow() - timedelta(hours=1)
    JobLifecycle(app=app, registry=registry()).recover(everything_running=True)
    job = wait(app, job_id)
    assert job.status == "failed"
    assert "interrupted" in str(job.error)


def test_workers_wake_at_once_when_work_arrives(app: AppContext) -> None:
    app.settings.job_poll_interval_s = 30  # only the wake-up event can make this fast
    runner = make_runner(app, workers=1)
    runner.start()
    try:
        time.sleep(0.2)
        job_id = enqueue(app, "echo", {"value": 1})
        app.job_wakeup.set()
        assert wait(app, job_id).status == "succeeded"
    finally:
        runner.stop()


def test_metrics_show_queue_depth_waits_durations_and_heartbeats(app: AppContext) -> None:
    app.metrics.add_collector(lambda: job_metrics(app))
    queued = enqueue(app, "echo", {"value": 1})
    text = app.metrics.render().decode()
    assert 'vigil_job_queue_depth{kind="echo"} 1.0' in text
    runner = make_runner(app, workers=1)
    runner.start()
    try:
        wait(app, queued)
        text = app.metrics.render().decode()
    finally:
        runner.stop()
    assert 'vigil_job_wait_seconds_count{kind="echo"} 1.0' in text
    assert 'vigil_job_duration_seconds_count{kind="echo"} 1.0' in text
    assert f'vigil_job_worker_heartbeat_timestamp_seconds{{kind="in-process",worker="{runner.worker_id}"}}' in text
    assert "vigil_job_metrics_up 1.0" in text


def test_finished_job_records_are_pruned_after_retention(app: AppContext) -> None:
    old, recent, running = (enqueue(app, "echo") for _ in range(3))
    with app.database.session() as session:
        bind_platform(session)
        for job_id, age_days, status in ((old, 40, "succeeded"), (recent, 5, "failed"), (running, 90, "running")):
            job = session.get(Job, job_id)
            assert job is not None
            job.status, job.finished_at = status, utcnow() - timedelta(days=age_days)
    assert prune_job_records(app, lambda _session, tenants: dict.fromkeys(tenants)) == 1  # platform default: 30
    with app.database.session() as session:
        bind_platform(session)
        assert {j.id for j in session.query(Job).all()} == {recent, running}
    assert prune_job_records(app, lambda _session, tenants: dict.fromkeys(tenants, 3)) == 1  # the tenant's 3 days
