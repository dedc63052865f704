"""Fair claiming across tenants, tested claim by claim (no timing): a tenant with 50 queued jobs does not starve a
tenant with one, and no tenant runs more jobs at once than its `concurrent_jobs` quota."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vigil.config import Settings
from vigil.core.blobs import BlobStore
from vigil.core.context import AppContext
from vigil.core.database import Database, TenantScope, bind_platform, build_engine
from vigil.core.metrics import Metrics
from vigil.identity.models import Tenant
from vigil.identity.quotas import concurrent_job_caps
from vigil.jobs.models import Job
from vigil.jobs.registry import JobRegistry
from vigil.jobs.runner import InProcessRunner
from vigil.jobs.service import JobService
from vigil.migrations.runner import upgrade_database

BUSY, QUIET, CAPPED = "tnt_busy", "tnt_quiet", "tnt_capped"


@pytest.fixture
def app(any_db_settings: Settings) -> Iterator[AppContext]:
    owner = build_engine(any_db_settings, admin=True)
    upgrade_database(owner)
    owner.dispose()
    database = Database(any_db_settings)
    with database.session() as session:
        session.add(Tenant(id=BUSY, name="busy", status="active", settings={}))
        session.add(Tenant(id=QUIET, name="quiet", status="active", settings={}))
        session.add(Tenant(id=CAPPED, name="capped", status="active", settings={"quotas": {"concurrent_jobs": 2}}))
    yield AppContext(
        settings=any_db_settings,
        database=database,
        blobs=BlobStore(any_db_settings.blob_root),
        secret_key=b"k" * 32,
        metrics=Metrics(),
    )
    database.dispose()


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
    runner = InProcessRunner(app=app, registry=JobRegistry(), workers=1)  # not started: we claim by hand
    enqueue(app, BUSY, 50)
    first = runner._claim_next()
    assert tenant_of(app, first) == BUSY
    assert first is not None
    [quiet_job] = enqueue(app, QUIET)  # queued after all 50, while one of them runs
    finish(app, first)  # one worker: the next claim happens when the running job ends
    second = runner._claim_next()
    assert second == quiet_job, "the quiet tenant's job must not wait behind the busy tenant's 49"
    finish(app, second)
    order = []
    for _ in range(3):
        job_id = runner._claim_next()
        order.append(tenant_of(app, job_id))
        assert job_id is not None
        finish(app, job_id)
    assert order == [BUSY, BUSY, BUSY]  # alone again, the busy tenant has every turn


def test_round_robin_and_per_tenant_caps(app: AppContext) -> None:
    # The caps come from the tenants' quotas, handed in as `vigil.app` does (the runner knows no tenant policy).
    runner = InProcessRunner(
        app=app,
        registry=JobRegistry(),
        workers=8,
        tenant_caps=lambda session, tenants: concurrent_job_caps(session, tenants, app.settings),
    )
    enqueue(app, CAPPED, 10)
    enqueue(app, QUIET, 2)
    claims = [tenant_of(app, runner._claim_next()) for _ in range(5)]
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
