"""Job use cases: enqueue (for domains), read, list and cancel (for the API)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
from sqlalchemy.orm import Session

from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.core.errors import InvalidState, NotFound
from vigil.core.ids import new_id
from vigil.core.pagination import decode_cursor, page_of
from vigil.jobs.broker import Broker
from vigil.jobs.lifecycle import JobLifecycle
from vigil.jobs.models import Job
from vigil.jobs.registry import JobRegistry
from vigil.jobs.repository import TERMINAL, JobRepository
from vigil.jobs.schemas import JobPublic

log = logging.getLogger("vigil.jobs")
# A long-poll is bounded: a client that wants longer asks again, so no request outlives proxies' idle timeouts.
MAX_WAIT_S = 60.0
# Between looks at a waited-for job: short at first (most jobs a user waits on are quick), then at most this.
_FIRST_LOOK_S, _MAX_LOOK_S = 0.05, 0.5
# A stream of a job's updates is bounded too (the client reconnects for more); between looks it sleeps this long.
MAX_FOLLOW_S = 120.0
_FOLLOW_LOOK_S = 0.25


class JobService:
    def __init__(self, *, session: Session, scope: TenantScope, app: AppContext) -> None:
        self.session = session
        self.jobs = JobRepository(session=session, scope=scope)
        self.scope = scope
        self.app = app

    @property
    def registry(self) -> JobRegistry:
        return self.app.find(JobRegistry) or JobRegistry()

    def enqueue(self, *, kind: str, payload: dict[str, Any], subject_id: str | None, created_by: str | None) -> Job:
        """Adds a queued job to the caller's transaction: it exists, and will be published to the broker (the
        outbox) and run, exactly when that transaction commits."""
        registered = self.registry.get(kind)
        job = Job(
            id=new_id("job"),
            tenant_id=self.scope.tenant_id,
            kind=kind,
            status="queued",
            progress=0.0,
            subject_id=subject_id,
            payload=payload,
            created_by=created_by,
            max_attempts=registered.limits.max_attempts if registered is not None else 3,
        )
        return self.jobs.add(job)

    def wake_workers(self) -> None:
        """After the enqueuing commit: this process's executor threads (or its dispatcher) look at once."""
        self.app.job_wakeup.set()

    def count_running(self) -> int:
        return self.jobs.count_running()

    def get(self, *, job_id: str) -> JobPublic:
        return JobPublic.model_validate(self._get(job_id))

    def list(
        self, *, limit: int, cursor: str | None, status: str | None = None, kind: str | None = None
    ) -> tuple[list[JobPublic], str | None]:
        rows = self.jobs.list(limit=limit, after_id=decode_cursor(cursor), status=status, kind=kind)
        items, next_cursor = page_of(rows, limit=limit, id_of=lambda j: j.id)
        return [JobPublic.model_validate(j) for j in items], next_cursor

    def cancel(self, *, job_id: str) -> JobPublic:
        """Cancels a queued or running job at once: it is recorded `cancelled` and its kind's failure hook runs in
        the same transaction (so e.g. a detector never stays `training`); then the running work is stopped — a
        Celery worker's process is terminated, an in-process thread stops at its next progress report — and
        whatever it would still record is refused (its owner no longer holds a running job)."""
        job = self._get(job_id)
        if job.status in TERMINAL or not self.jobs.lock_active(job_id):
            self.session.rollback()
            job = self._get(job_id)
            raise InvalidState(f"The job is already {job.status}.", status_now=job.status)
        job = self._get(job_id)  # read again under the lock: its state now is the one we change
        was_running, task_id = job.status == "running", job.task_id
        detail = "Cancelled while running." if was_running else "Cancelled before it started."
        JobLifecycle(app=self.app, registry=self.registry).close(
            self.session, job, "cancelled", error={"title": "Cancelled", "detail": detail}
        )
        self.session.commit()
        broker = self.app.find(Broker)
        if was_running and broker is not None and task_id is not None:
            try:
                broker.terminate(task_id)
            except Exception:  # the job is cancelled; the worker's supervisor stops the process when it sees it
                log.warning("could not ask the workers to stop job %s's process", job_id, exc_info=True)
        return JobPublic.model_validate(job)

    def _get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound("job", job_id)
        return job


async def wait_for_job(*, app: AppContext, scope: TenantScope, job_id: str, wait_s: float) -> JobPublic:
    """The job once it has ended, or as it is after `wait_s` seconds. The waiter holds no thread and no database
    connection while it waits: each look is one short read in a fresh session (so it sees what executors in any
    process committed), and between looks it only sleeps on the event loop."""

    def look() -> JobPublic:
        with app.database.session() as session:
            return JobService(session=session, scope=scope, app=app).get(job_id=job_id)

    job = await anyio.to_thread.run_sync(look)
    deadline = anyio.current_time() + min(wait_s, MAX_WAIT_S)
    pause = _FIRST_LOOK_S
    while job.status not in TERMINAL and (left := deadline - anyio.current_time()) > 0:
        await anyio.sleep(min(pause, left))
        pause = min(pause * 2, _MAX_LOOK_S)
        job = await anyio.to_thread.run_sync(look)
    return job


async def follow_job(
    *, app: AppContext, scope: TenantScope, first: JobPublic, max_s: float, idle_s: float
) -> AsyncIterator[JobPublic | None]:
    """The job's states for a stream of updates: `first` at once, then each change of status, progress or stage,
    until it has ended or `max_s` have passed; `None` after `idle_s` without a change (the caller keeps the
    connection alive with it). Like `wait_for_job`, it holds no thread and no connection between looks."""

    def look() -> JobPublic:
        with app.database.session() as session:
            return JobService(session=session, scope=scope, app=app).get(job_id=first.id)

    def mark(job: JobPublic) -> tuple[str, float, str | None]:
        return job.status, job.progress, job.stage

    yield first
    job, deadline = first, anyio.current_time() + min(max_s, MAX_FOLLOW_S)
    last_sent = anyio.current_time()
    while job.status not in TERMINAL and (left := deadline - anyio.current_time()) > 0:
        await anyio.sleep(min(_FOLLOW_LOOK_S, left))
        seen = await anyio.to_thread.run_sync(look)
        now = anyio.current_time()
        if mark(seen) != mark(job):
            job, last_sent = seen, now
            yield job
        elif now - last_sent >= idle_s:
            last_sent = now
            yield None


def active_jobs(session: Session, scope: TenantScope, job_ids: set[str]) -> set[str]:
    """Which of `job_ids` are queued or running (a domain's blobs named after their job are in use meanwhile)."""
    return JobRepository(session=session, scope=scope).active_among(job_ids) if job_ids else set()


def scratch_blob_refs(session: Session, scope: TenantScope, keys: list[str]) -> list[str]:
    """A job's scratch (`tenants/<t>/jobs/<job>/a<attempt>/…`, every attempt's) is in use until the job ends, when
    `forget_scratch` removes it: a referrer for the orphan-blob sweep, which takes what that clean-up missed."""
    owners = {key: _path_part(key, 3) for key in keys}
    active = active_jobs(session, scope, {job for job in owners.values() if job})
    return [key for key, job in owners.items() if job in active]


def _path_part(key: str, index: int) -> str | None:
    parts = key.split("/")
    return parts[index] if len(parts) > index else None
