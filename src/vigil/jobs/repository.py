"""Job queries: tenant-scoped for the API, and the queue operations workers use across tenants."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil.core.database import TenantScope, utcnow
from vigil.jobs.models import Job

ACTIVE = ("queued", "running")


class JobRepository:
    def __init__(self, *, session: Session, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope

    def get(self, job_id: str) -> Job | None:
        return self.session.scalar(select(Job).where(Job.id == job_id, Job.tenant_id == self.scope.tenant_id))

    def list(self, *, limit: int, after_id: str | None, status: str | None, kind: str | None) -> Sequence[Job]:
        query = select(Job).where(Job.tenant_id == self.scope.tenant_id)
        if after_id is not None:
            query = query.where(Job.id < after_id)
        if status is not None:
            query = query.where(Job.status == status)
        if kind is not None:
            query = query.where(Job.kind == kind)
        return self.session.scalars(query.order_by(Job.id.desc()).limit(limit + 1)).all()

    def add(self, job: Job) -> Job:
        if job.tenant_id != self.scope.tenant_id:
            raise ValueError("a job belongs to the scope's tenant")
        self.session.add(job)
        self.session.flush()
        return job

    def active_for_subject(self, subject_id: str) -> Sequence[Job]:
        return self.session.scalars(
            select(Job).where(
                Job.tenant_id == self.scope.tenant_id, Job.subject_id == subject_id, Job.status.in_(ACTIVE)
            )
        ).all()


class QueueRepository:
    """What workers do: claim the next job, beat, finish, and requeue work a dead worker left behind."""

    def __init__(self, *, session: Session) -> None:
        self.session = session

    def next_queued_ids(self, *, limit: int) -> Sequence[str]:
        return self.session.scalars(select(Job.id).where(Job.status == "queued").order_by(Job.id).limit(limit)).all()

    def claim(self, *, job_id: str, worker_id: str) -> bool:
        """Compare-and-set: exactly one worker wins a queued job, on SQLite and PostgreSQL alike."""
        now = utcnow()
        result = self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "queued")
            .values(
                status="running",
                worker_id=worker_id,
                started_at=now,
                heartbeat_at=now,
                attempts=Job.attempts + 1,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def get(self, job_id: str) -> Job | None:
        return self.session.get(Job, job_id)

    def heartbeat(self, *, job_id: str, progress: float) -> bool:
        """Records progress; returns whether cancellation was requested meanwhile."""
        self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "running")
            .values(progress=progress, heartbeat_at=utcnow())
        )
        return bool(self.session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    def orphans(self, *, heartbeat_before: datetime | None) -> Sequence[Job]:
        query = select(Job).where(Job.status == "running")
        if heartbeat_before is not None:
            query = query.where(Job.heartbeat_at < heartbeat_before)
        return self.session.scalars(query).all()
