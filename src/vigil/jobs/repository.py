"""Job queries: tenant-scoped for the API, and the queue operations executors use across tenants."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from vigil.core.database import TenantScope, bind_platform, bind_tenant, notify, utcnow
from vigil.jobs.models import Job, JobWorker

ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "failed", "cancelled")
# The channel executors LISTEN on (PostgreSQL): sent, in the same transaction, when work becomes claimable.
WAKE_CHANNEL = "vigil_jobs"


class JobRepository:
    def __init__(self, *, session: Session, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope
        bind_tenant(session, scope)

    def get(self, job_id: str) -> Job | None:
        return self.session.scalar(
            select(Job)
            .where(Job.id == job_id, Job.tenant_id == self.scope.tenant_id)
            .execution_options(populate_existing=True)
        )

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
        notify(self.session, WAKE_CHANNEL)  # delivered when (and only if) the enqueuing transaction commits
        return job

    def lock_active(self, job_id: str) -> bool:
        """Locks the job if it is still queued or running (its row on PostgreSQL, the database on SQLite), so
        whoever ends it next — a cancel here, an executor recording an outcome — sees the other's decision."""
        result = self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.tenant_id == self.scope.tenant_id, Job.status.in_(ACTIVE))
            .values(cancel_requested=True)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def count_running(self) -> int:
        return int(
            self.session.scalar(
                select(func.count()).where(Job.tenant_id == self.scope.tenant_id, Job.status == "running")
            )
            or 0
        )

    def active_among(self, job_ids: Collection[str]) -> set[str]:
        """Which of `job_ids` are queued or running."""
        return set(
            self.session.scalars(
                select(Job.id).where(Job.tenant_id == self.scope.tenant_id, Job.id.in_(job_ids), Job.status.in_(ACTIVE))
            )
        )

    def active_for_subject(self, subject_id: str) -> Sequence[Job]:
        return self.session.scalars(
            select(Job).where(
                Job.tenant_id == self.scope.tenant_id, Job.subject_id == subject_id, Job.status.in_(ACTIVE)
            )
        ).all()


class QueueRepository:
    """What executors do: claim the next job, beat, finish, requeue work a dead worker left behind, publish the
    outbox, prune old records.

    Executors act for every tenant, so their sessions have platform access (`bind_platform`); a job's handler then
    works through tenant-scoped repositories, which narrow the session to the job's tenant."""

    def __init__(self, *, session: Session, bind: bool = True) -> None:
        self.session = session
        if bind:
            bind_platform(session)

    @property
    def postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    # -- claiming --------------------------------------------------------------------------------------------
    def queue_heads(self, kind: str | None = None) -> dict[str, str]:
        """Each tenant with queued work (of `kind`) → its oldest queued job."""
        query = select(Job.tenant_id, func.min(Job.id)).where(Job.status == "queued")
        if kind is not None:
            query = query.where(Job.kind == kind)
        rows = self.session.execute(query.group_by(Job.tenant_id)).all()
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

    def lock_tenant_claims(self, tenant_id: str) -> bool:
        """PostgreSQL: takes the tenant's claim lock for this transaction, or answers False at once if another
        process holds it (that one is deciding for the tenant: move on). Serialising a tenant's claims is what
        keeps its `concurrent_jobs` cap exact across processes. Elsewhere (SQLite: one process) always True."""
        if not self.postgres:
            return True
        key = func.hashtext(f"vigil.jobs.claim:{tenant_id}")
        return bool(self.session.scalar(select(func.pg_try_advisory_xact_lock(key))))

    def head_of(self, tenant_id: str, kind: str | None = None) -> str | None:
        """The tenant's oldest queued job (of `kind`), skipping rows another transaction has locked (SKIP LOCKED)."""
        query = select(Job.id).where(Job.tenant_id == tenant_id, Job.status == "queued")
        if kind is not None:
            query = query.where(Job.kind == kind)
        query = query.order_by(Job.id).limit(1)
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        return self.session.scalar(query)

    def claim(self, *, job_id: str, worker_id: str, worker_pid: int | None = None, task_id: str | None = None) -> bool:
        """Compare-and-set: exactly one executor wins a queued job, on SQLite and PostgreSQL alike."""
        now = utcnow()
        result = self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "queued")
            .values(
                status="running",
                worker_id=worker_id,
                worker_pid=worker_pid,
                task_id=task_id,
                started_at=now,
                heartbeat_at=now,
                attempts=Job.attempts + 1,
                progress=0.0,
                stage=None,
                parts_total=0,
                parts_done=0,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def get(self, job_id: str) -> Job | None:
        return self.session.get(Job, job_id, populate_existing=True)

    def lock_owned(self, *, job_id: str, worker_id: str) -> Job | None:
        """The job, locked for this transaction, if it is still running and owned by `worker_id`; else None
        (cancelled, requeued or taken over meanwhile: its outcome is no longer ours to record)."""
        result = self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "running", Job.worker_id == worker_id)
            .values(heartbeat_at=utcnow())
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        return self.get(job_id)

    def lock_running(self, job_id: str) -> Job | None:
        """The job, locked, if it is still running (whoever owns it): for work done on its behalf elsewhere
        (a partition), and for records made by a worker's supervisor about its child."""
        result = self.session.execute(
            update(Job).where(Job.id == job_id, Job.status == "running").values(heartbeat_at=utcnow())
        )
        return self.get(job_id) if result.rowcount else None  # type: ignore[attr-defined]

    def progress(
        self, *, job_id: str, worker_id: str | None, progress: float, stage: str | None = None
    ) -> tuple[str, bool] | None:
        """Records progress, and the stage when one is given (and that its owner lives); returns (status, cancel
        requested) — None if gone."""
        query = update(Job).where(Job.id == job_id, Job.status == "running")
        if worker_id is not None:
            query = query.where(Job.worker_id == worker_id)
        values: dict[str, Any] = {"progress": progress, "heartbeat_at": utcnow()}
        if stage is not None:
            values["stage"] = stage
        self.session.execute(query.values(**values))
        row = self.session.execute(
            select(Job.status, Job.cancel_requested, Job.worker_id).where(Job.id == job_id)
        ).one_or_none()
        if row is None:
            return None
        status, cancel, owner = row
        if worker_id is not None and owner != worker_id:
            return ("taken-over", True)
        return str(status), bool(cancel)

    def part_done(self, job_id: str) -> tuple[int, int]:
        """Counts one more finished partition; returns (done, total) as of this transaction (row locked)."""
        self.session.execute(update(Job).where(Job.id == job_id).values(parts_done=Job.parts_done + 1))
        row = self.session.execute(select(Job.parts_done, Job.parts_total).where(Job.id == job_id)).one()
        return int(row[0]), int(row[1])

    # -- liveness and recovery -------------------------------------------------------------------------------
    def beat(self, *, worker: JobWorker) -> int:
        """The node's heartbeat, and its running jobs': they live as long as it does. Returns their count."""
        now = utcnow()
        existing = self.session.get(JobWorker, worker.id)
        if existing is None:
            worker.heartbeat_at = now
            self.session.add(worker)
        else:
            existing.heartbeat_at, existing.stopped_at = now, None
        result = self.session.execute(
            update(Job).where(Job.worker_id == worker.id, Job.status == "running").values(heartbeat_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def stopped(self, worker_id: str) -> None:
        existing = self.session.get(JobWorker, worker_id)
        if existing is not None:
            existing.stopped_at = utcnow()

    def owned_by(self, worker_id: str) -> Sequence[Job]:
        return self.session.scalars(select(Job).where(Job.worker_id == worker_id, Job.status == "running")).all()

    def orphans(self, *, heartbeat_before: datetime | None) -> Sequence[Job]:
        query = select(Job).where(Job.status == "running")
        if heartbeat_before is not None:
            query = query.where(Job.heartbeat_at < heartbeat_before)
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        return self.session.scalars(query).all()

    def running_since(self, *, kind: str, started_before: datetime) -> Sequence[Job]:
        query = select(Job).where(Job.status == "running", Job.kind == kind, Job.started_at < started_before)
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        return self.session.scalars(query).all()

    def by_task(self, task_id: str) -> Job | None:
        return self.session.scalar(select(Job).where(Job.task_id == task_id, Job.status == "running"))

    def cancelled_tasks(self, task_ids: Sequence[str], *, grace_s: float) -> list[str]:
        """Of these broker tasks, those whose job was cancelled more than `grace_s` ago."""
        if not task_ids:
            return []
        before = utcnow() - timedelta(seconds=grace_s)
        return [
            str(t)
            for t in self.session.scalars(
                select(Job.task_id).where(
                    Job.task_id.in_(task_ids), Job.status == "cancelled", Job.finished_at < before
                )
            ).all()
        ]

    def lock_stale(self, *, job_id: str, heartbeat_before: datetime | None) -> Job | None:
        """The job, locked, if it is still running and its owner silent since `heartbeat_before` (None: any)."""
        query = update(Job).where(Job.id == job_id, Job.status == "running")
        if heartbeat_before is not None:
            query = query.where(Job.heartbeat_at < heartbeat_before)
        result = self.session.execute(query.values(worker_pid=Job.worker_pid))
        return self.get(job_id) if result.rowcount else None  # type: ignore[attr-defined]

    # -- the outbox ------------------------------------------------------------------------------------------
    def to_dispatch(self, *, published_before: datetime, limit: int) -> Sequence[Job]:
        """Queued jobs never published, or published before `published_before` and still unclaimed (their
        message was lost, or dropped while their tenant was at its cap), oldest first. Locked rows are skipped:
        another dispatcher is publishing them."""
        query = (
            select(Job)
            .where(
                Job.status == "queued",
                or_(Job.dispatched_at.is_(None), Job.dispatched_at < published_before),
            )
            .order_by(Job.id)
            .limit(limit)
        )
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        return self.session.scalars(query).all()

    def mark_dispatched(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self.session.execute(update(Job).where(Job.id.in_(job_ids)).values(dispatched_at=utcnow()))

    def release_head_of(self, tenant_id: str) -> None:
        """A slot of the tenant freed: its oldest queued job is published again at once (its message may have
        been dropped while the tenant was at its cap)."""
        head = self.session.scalar(select(func.min(Job.id)).where(Job.tenant_id == tenant_id, Job.status == "queued"))
        if head is not None:
            self.session.execute(update(Job).where(Job.id == head).values(dispatched_at=None))

    def wake(self) -> None:
        notify(self.session, WAKE_CHANNEL)

    # -- operations ------------------------------------------------------------------------------------------
    def queue_depth(self) -> dict[str, int]:
        rows = self.session.execute(
            select(Job.kind, func.count()).where(Job.status == "queued").group_by(Job.kind)
        ).all()
        return {str(kind): int(n) for kind, n in rows}

    def running_per_tenant(self) -> dict[str, int]:
        rows = self.session.execute(
            select(Job.tenant_id, func.count()).where(Job.status == "running").group_by(Job.tenant_id)
        ).all()
        return {str(tenant): int(n) for tenant, n in rows}

    def workers(self) -> Sequence[JobWorker]:
        return self.session.scalars(select(JobWorker).where(JobWorker.stopped_at.is_(None))).all()

    def forget_workers(self, *, silent_since: datetime) -> None:
        self.session.execute(
            delete(JobWorker).where(or_(JobWorker.heartbeat_at < silent_since, JobWorker.stopped_at < silent_since))
        )

    def prune(self, *, tenant_id: str, finished_before: datetime, limit: int) -> int:
        """Deletes up to `limit` of the tenant's finished jobs older than `finished_before`; returns how many."""
        ids = self.session.scalars(
            select(Job.id)
            .where(Job.tenant_id == tenant_id, Job.status.in_(TERMINAL), Job.finished_at < finished_before)
            .limit(limit)
        ).all()
        if ids:
            self.session.execute(delete(Job).where(Job.id.in_(ids)))
        return len(ids)

    def tenants_with_finished_jobs(self) -> list[str]:
        return [
            str(t) for t in self.session.scalars(select(Job.tenant_id).where(Job.status.in_(TERMINAL)).distinct()).all()
        ]
