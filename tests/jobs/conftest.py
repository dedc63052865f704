"""A job machinery on a real database (SQLite and PostgreSQL): an app context with a tenant, and helpers to enqueue
and wait — shared by the runner, lifecycle, fair-scheduling and worker tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from vigil.config import Settings
from vigil.core.blobs import BlobStore
from vigil.core.context import AppContext
from vigil.core.database import Database, TenantScope, bind_platform, build_engine
from vigil.core.metrics import Metrics
from vigil.identity.models import Tenant
from vigil.jobs.models import Job
from vigil.jobs.service import JobService
from vigil.migrations.runner import upgrade_database

TENANT = "tnt_test"
FINAL = ("succeeded", "failed", "cancelled")


def make_context(settings: Settings, tenants: dict[str, dict[str, object]] | None = None) -> AppContext:
    owner = build_engine(settings, admin=True)
    upgrade_database(owner)
    owner.dispose()
    database = Database(settings)
    with database.session() as session:
        for tenant_id, tenant_settings in (tenants or {TENANT: {}}).items():
            session.add(Tenant(id=tenant_id, name=tenant_id, status="active", settings=tenant_settings))
    return AppContext(
        settings=settings,
        database=database,
        blobs=BlobStore(settings.blob_root),
        secret_key=b"k" * 32,
        metrics=Metrics(),
    )


@pytest.fixture
def app(any_db_settings: Settings) -> Iterator[AppContext]:
    any_db_settings.job_poll_interval_s = 0.02
    context = make_context(any_db_settings)
    yield context
    context.database.dispose()


def enqueue(app: AppContext, kind: str, payload: dict[str, object] | None = None, tenant: str = TENANT) -> str:
    with app.database.session() as session:
        job = JobService(session=session, scope=TenantScope(tenant), app=app).enqueue(
            kind=kind, payload=payload or {}, subject_id=None, created_by=None
        )
        return job.id


def read(app: AppContext, job_id: str) -> Job:
    with app.database.session() as session:
        bind_platform(session)
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def wait(app: AppContext, job_id: str, statuses: tuple[str, ...] = FINAL, timeout: float = 30) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = read(app, job_id)
        if job.status in statuses:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} stuck in {read(app, job_id).status}")
