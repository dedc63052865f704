"""Job use cases: enqueue (for domains), read, list and cancel (for the API)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from vigil.core.context import AppContext
from vigil.core.database import TenantScope, utcnow
from vigil.core.errors import InvalidState, NotFound
from vigil.core.ids import new_id
from vigil.core.pagination import decode_cursor, page_of
from vigil.jobs.models import Job
from vigil.jobs.repository import JobRepository
from vigil.jobs.schemas import JobPublic

TERMINAL = ("succeeded", "failed", "cancelled")


class JobService:
    def __init__(self, *, session: Session, scope: TenantScope, app: AppContext) -> None:
        self.session = session
        self.jobs = JobRepository(session=session, scope=scope)
        self.scope = scope
        self.app = app

    def enqueue(self, *, kind: str, payload: dict[str, Any], subject_id: str | None, created_by: str | None) -> Job:
        """Adds a queued job to the caller's transaction; it runs once that transaction commits."""
        job = Job(
            id=new_id("job"),
            tenant_id=self.scope.tenant_id,
            kind=kind,
            status="queued",
            progress=0.0,
            subject_id=subject_id,
            payload=payload,
            created_by=created_by,
        )
        return self.jobs.add(job)

    def wake_workers(self) -> None:
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
        job = self._get(job_id)
        if job.status in TERMINAL:
            raise InvalidState(f"The job is already {job.status}.", status_now=job.status)
        if job.status == "queued":
            job.status = "cancelled"
            job.finished_at = utcnow()
            job.error = {"title": "Cancelled", "detail": "Cancelled before it started."}
        # A running job stops at its next progress report; the runner records it as cancelled.
        job.cancel_requested = True
        self.session.commit()
        return JobPublic.model_validate(job)

    def _get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound("job", job_id)
        return job
