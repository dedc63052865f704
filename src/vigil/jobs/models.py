"""The job tables: the durable state of every piece of long work, and the executors that run it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.database import Base, utcnow


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_id", "status", "id"),
        Index("ix_jobs_status_dispatched_at", "status", "dispatched_at"),
        Index("ix_jobs_worker_id_status", "worker_id", "status"),
        Index("ix_jobs_tenant_id_status", "tenant_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(default=0.0)
    # What the progress is progress of ("fitting", "scoring"), as the handler last reported it.
    stage: Mapped[str | None] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(32), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    created_by: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # Who runs it: the executor node (`JobWorker.id`), the OS process inside it, and the broker message.
    worker_id: Mapped[str | None] = mapped_column(String(64))
    worker_pid: Mapped[int | None]
    task_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When it (last) joined the queue: the wait it reports is started_at - queued_at.
    queued_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    # The outbox: NULL until a dispatcher has published it to the broker (and again when it must be re-published).
    dispatched_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    # The handler's own time (what the queue's overhead is measured against).
    run_seconds: Mapped[float | None]
    # Partitioned work: how many parts the job fanned out to, how many are done.
    parts_total: Mapped[int] = mapped_column(default=0)
    parts_done: Mapped[int] = mapped_column(default=0)
    # Why the last attempt did not finish (a lost worker, a lease that ran out): the give-up error quotes it.
    last_error: Mapped[dict[str, Any] | None]


class JobWorker(Base):
    """An executor node (a `vigil worker`, or the thread pool of one `vigil serve`) and its last sign of life."""

    __tablename__ = "job_workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # celery | in-process
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    concurrency: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]
