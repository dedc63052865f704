"""Fair claiming across tenants, tested claim by claim (no timing): a tenant with 50 queued jobs does not starve a
tenant with one, and no tenant runs more jobs at once than its `concurrent_jobs` quota."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PostgresUrls, make_settings
from tests.jobs.conftest import make_context
from vigil.config import Settings
from vigil.core.context import AppContext
from vigil.core.database import Database, TenantScope, bind_platform
from vigil.core.metrics import Metrics
from vigil.identity.quotas import concurrent_job_caps
from vigil.jobs.lifecycle import JobLifecycle
from vigil.jobs.models import Job
from vigil.jobs.registry import JobRegistry
from vigil.jobs.service import JobService

BUSY, QUIET, CAPPED = "tnt_busy", "tnt_quiet", "tnt_capped"


@pytest.fixture
def app(any_db_settings: Settings) -> Iterator[AppContext]:
    context = make_context(
        any_db_settings,
        {BUSY: {}, QUIET: {}, CAPPED: {"quotas": {"concurrent_jobs": 2}}},
    )
    yield context
    context.database.dispose()


def enqueue(app: AppContext, tenant: str, n: int = 1) -> list[str]:
    with app.database.session() as session:
        jobs = JobService(session=session, scope=TenantScope(tenant), app=app)
        return [jobs.enqueue(kind="noop", payload={}, subject_id=None, created_by=None).id for _ in range(n)]


def finish(app: AppContext, job_id: str) -> None:
    with app.database.session() as session:
        bind_platform(session)
        job = session.get(Job, job_id)
        assert job is not None
        job.status = "succeeded"


def tenant_of(app: AppContext, job_id: str | None) -> str | None:
    if job_id is None:
        return None
    with app.database.session() as session:
        bind_platform(session)
        job = session.get(Job, job_id)
        assert job is not None
        return job.tenant_id


def test_a_quiet_tenant_is_served_at_the_next_claim(app: AppContext) -> None:
    lifecycle = JobLifecycle(app=app, registry=JobRegistry())  # no executor: we claim by hand
    enqueue(app, BUSY, 50)
    first = lifecycle.claim_next(worker_id="w")
    assert tenant_of(app, first) == BUSY
    assert first is not None
    [quiet_job] = enqueue(app, QUIET)  # queued after all 50, while one of them runs
    finish(app, first)  # one worker: the next claim happens when the running job ends
    second = lifecycle.claim_next(worker_id="w")
    assert second == quiet_job, "the quiet tenant's job must not wait behind the busy tenant's 49"
    finish(app, second)
    order = []
    for _ in range(3):
        job_id = lifecycle.claim_next(worker_id="w")
        order.append(tenant_of(app, job_id))
        assert job_id is not None
        finish(app, job_id)
    assert order == [BUSY, BUSY, BUSY]  # alone again, the busy tenant has every turn


def test_round_robin_and_per_tenant_caps(app: AppContext) -> None:
    # The caps come from the tenants' quotas, handed in as `vigil.app` does (the runner knows no tenant policy).
    lifecycle = JobLifecycle(
        app=app,
        registry=JobRegistry(),
        tenant_caps=lambda session, tenants: concurrent_job_caps(session, tenants, app.settings),
    )
    enqueue(app, CAPPED, 10)
    enqueue(app, QUIET, 2)
    claims = [tenant_of(app, lifecycle.claim_next(worker_id="w")) for _ in range(5)]
    # Alternating while both wait; CAPPED stops at its cap of 2 running jobs (nothing finishes here).
    assert claims[:4] == [CAPPED, QUIET, CAPPED, QUIET]
    assert claims[4] is None
    with app.database.session() as session:
        bind_platform(session)
        running = session.query(Job).filter(Job.tenant_id == CAPPED, Job.status == "running").count()
    assert running == 2


def test_the_rule_in_the_docstring_holds() -> None:
    import doctest  # noqa: PLC0415

    from vigil.jobs import scheduling  # noqa: PLC0415

    assert doctest.testmod(scheduling, verbose=False).failed == 0


@pytest.mark.postgres
def test_a_tenants_cap_holds_across_processes(postgres_urls: PostgresUrls, tmp_path: Path) -> None:
    """Eight claimers, each with its own connection pool (as separate API or worker processes would have), race
    for a capped tenant's 30 queued jobs: exactly its cap of 2 are claimed."""
    settings = make_settings(tmp_path / "data", database_url=postgres_urls.app, database_admin_url=postgres_urls.admin)
    first = make_context(settings, {CAPPED: {"quotas": {"concurrent_jobs": 2}}})
    enqueue(first, CAPPED, 30)
    contexts = [first] + [
        AppContext(
            settings=settings, database=Database(settings), blobs=first.blobs, secret_key=b"k" * 32, metrics=Metrics()
        )
        for _ in range(7)
    ]
    start = threading.Barrier(len(contexts))
    claimed: list[str] = []

    def claim(context: AppContext, n: int) -> None:
        lifecycle = JobLifecycle(
            app=context,
            registry=JobRegistry(),
            tenant_caps=lambda session, tenants: concurrent_job_caps(session, tenants, settings),
        )
        start.wait()
        for _ in range(3):
            job_id = lifecycle.claim_next(worker_id=f"w{n}")
            if job_id is not None:
                claimed.append(job_id)

    threads = [threading.Thread(target=claim, args=(c, n)) for n, c in enumerate(contexts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for context in contexts:
        context.database.dispose()
    assert len(claimed) == 2, f"{len(claimed)} jobs claimed for a tenant capped at 2"
