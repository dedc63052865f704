"""Job queries: tenant-scoped for the API, and the queue operations workers use across tenants."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vigil.core.database import TenantScope, bind_platform, bind_tenant, utcnow
from vigil.jobs.models import Job

ACTIVE = ("queued", "running")


class JobRepository:
    def __init__(self, *, session: Session, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope
        bind_tenant(session, scope)

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

    def count_running(self) -> int:
        return int(
            self.session.scalar(
                select(func.count()).where(Job.tenant_id == self.scope.tenant_id, Job.status == "running")
            )
            or 0
        )

    def active_for_subject(self, subject_id: str) -> Sequence[Job]:
        return self.session.scalars(
            select(Job).where(
                Job.tenant_id == self.scope.tenant_id, Job.subject_id == subject_id, Job.status.in_(ACTIVE)
            )
        ).all()


class QueueRepository:
    """What workers do: claim the next job, beat, finish, and requeue work a dead worker left behind.

    Workers act for every tenant, so their sessions have platform access (`bind_platform`); a job's handler then
    works through tenant-scoped repositories, which narrow the session to the job's tenant."""

    def __init__(self, *, session: Session) -> None:
        self.session = session
        bind_platform(session)

    def queue_heads(self) -> dict[str, str]:
        """Each tenant with queued work → its oldest queued job."""
        rows = self.session.execute(
            select(Job.tenant_id, func.min(Job.id)).where(Job.status == "queued").group_by(Job.tenant_id)
        ).all()
        return {str(tenant_id): str(job_id) for tenant_id, job_id in rows}

    def tenant_load(self, tenant_ids: Sequence[str]) -> dict[str, tuple[int, datetime | None]]:
        """Per tenant: (jobs running now, when its latest job started) — what fair claiming orders by."""
        rows = self.session.execute(
            select(
                Job.tenant_id,
                func.count().filter(Job.status == "running"),
                func.max(Job.started_at),
            )
            .where(Job.tenant_id.in_(tenant_ids))
            .group_by(Job.tenant_id)
        ).all()
        return {tenant_id: (int(running), started) for tenant_id, running, started in rows}

    def running_of(self, tenant_id: str) -> int:
        return int(
            self.session.scalar(select(func.count()).where(Job.tenant_id == tenant_id, Job.status == "running")) or 0
        )

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
