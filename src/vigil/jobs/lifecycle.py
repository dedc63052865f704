"""The life of a job row, whatever executes it: claim it fairly, run its handler, record how it ended (running the
kind's failure hook on every unsuccessful end), requeue or give up what a lost worker left behind.

Both executors — the in-process threads of the embedded default and Celery workers — go through here, so the
rules are one: the row is the source of truth, an outcome is recorded only by the job's owner while the job is
still running (a cancel or a takeover in between wins), and an interrupted attempt is retried until the job's
`max_attempts`, then given up with the reason of the last one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.core.context import AppContext
from vigil.core.database import TenantScope, is_database_outage, platform_access, utcnow
from vigil.core.errors import JobInterrupted, JobOutOfMemory, VigilError
from vigil.jobs.models import Job, JobWorker
from vigil.jobs.registry import (
    Claimed,
    JobCancelled,
    JobContext,
    JobKind,
    JobOutcome,
    JobRegistry,
    RunReport,
    SoftTimeLimit,
    forget_scratch,
    problem_of,
    run_whole,
    time_limit_problem,
)
from vigil.jobs.repository import QueueRepository
from vigil.jobs.scheduling import fair_order

log = logging.getLogger("vigil.jobs")
PROGRESS_WRITE_INTERVAL_S = 0.25
RECORD_RETRIES = 3
RECORD_OUTAGE_RETRY_S = 1.0  # between attempts to run or record a job while the database is unavailable
# A job past its hard limit by this much, that nobody ended, is ended by the recovery sweep.
OVERDUE_GRACE_S = 5.0

# Each tenant's cap on running jobs (its `concurrent_jobs` quota): the job machinery knows no tenant policy, so the
# domain that owns quotas hands this in (wired by `vigil.app`). A tenant missing from the answer gets the default.
TenantCaps = Callable[[Session, list[str]], Mapping[str, int]]


class JobLifecycle:
    def __init__(
        self,
        *,
        app: AppContext,
        registry: JobRegistry,
        tenant_caps: TenantCaps | None = None,
        soft_limit_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.app = app
        self.registry = registry
        self.tenant_caps = tenant_caps
        # What the executor raises inside a handler at the soft limit (Celery's SoftTimeLimitExceeded).
        self.soft_limit_errors: tuple[type[BaseException], ...] = (SoftTimeLimit, *soft_limit_errors)

    # -- claiming --------------------------------------------------------------------------------------------
    def claim_next(
        self, *, worker_id: str, worker_pid: int | None = None, task_id: str | None = None, kind: str | None = None
    ) -> str | None:
        """Claims the next job (of `kind`) fairly across tenants (`scheduling.fair_order`), within each tenant's cap.

        On PostgreSQL a tenant's claims are serialised by an advisory lock (a claimer that finds it taken moves on
        to the next tenant) and the tenant's head is read `FOR UPDATE SKIP LOCKED`, so the cap holds across every
        process and no two claimers wait on each other."""
        default_cap = self.app.settings.quota_concurrent_jobs
        with self.app.database.session() as session:
            queue = QueueRepository(session=session)
            heads = queue.queue_heads(kind)
            if not heads:
                return None
            tenants = list(heads)
            caps = dict(self.tenant_caps(session, tenants)) if self.tenant_caps else {}
            tenant_of = {job_id: tenant for tenant, job_id in heads.items()}
            for head in fair_order(heads, queue.tenant_load(tenants), caps, default_cap=default_cap):
                tenant = tenant_of[head]
                if not queue.lock_tenant_claims(tenant):
                    continue
                if queue.running_of(tenant) >= caps.get(tenant, default_cap):
                    continue
                job_id = queue.head_of(tenant, kind)
                if job_id is not None and queue.claim(
                    job_id=job_id, worker_id=worker_id, worker_pid=worker_pid, task_id=task_id
                ):
                    return job_id
        return None

    def load(self, job_id: str) -> Claimed | None:
        with self.app.database.session() as session:
            job = QueueRepository(session=session).get(job_id)
            if job is None:
                return None
            wait = (job.started_at - job.queued_at).total_seconds() if job.started_at and job.queued_at else 0.0
            return Claimed(
                id=job.id,
                kind=job.kind,
                tenant_id=job.tenant_id,
                payload=dict(job.payload),
                attempt=job.attempts,
                wait_s=max(0.0, wait),
            )

    # -- running ---------------------------------------------------------------------------------------------
    def context(self, job: Claimed, *, worker_id: str | None, started: float | None = None) -> JobContext:
        """The handler's context; its progress reports record progress and stop the handler (`JobCancelled`)
        once the job is no longer running for us — or (`SoftTimeLimit`) once its soft limit has passed."""
        kind = self.registry.get(job.kind)
        soft = kind.limits.soft_time_limit_s if kind is not None else None
        t0 = started if started is not None else time.monotonic()
        last_write = [0.0]
        last_stage: list[str | None] = [None]

        def report(percent: float, stage: str | None) -> None:
            now = time.monotonic()
            if soft is not None and now - t0 > soft:
                raise SoftTimeLimit
            new_stage = stage is not None and stage != last_stage[0]
            # A new stage is always written: a waiting user should see the job move on at once.
            if percent < 100 and not new_stage and now - last_write[0] < PROGRESS_WRITE_INTERVAL_S:
                return
            last_write[0] = now
            if new_stage:
                last_stage[0] = stage
            with self.app.database.session() as session:
                state = QueueRepository(session=session).progress(
                    job_id=job.id, worker_id=worker_id, progress=percent, stage=stage if new_stage else None
                )
            if state is None or state[0] != "running" or state[1]:
                raise JobCancelled

        return JobContext(
            job_id=job.id,
            scope=TenantScope(job.tenant_id),
            payload=job.payload,
            app=self.app,
            report=report,
            attempt=job.attempt,
        )

    def execute(self, job_id: str, *, worker_id: str) -> RunReport | None:
        """Runs a claimed job to its end in this process (a partitioned kind's parts one after another) and
        records the outcome. A database outage on the way (loading the job, the handler's own reads) is not the
        job's failure: it runs again once the database is back — the job is still this worker's (its heartbeat
        says so), and left `running` it would never be recovered (found by the disaster-recovery suite)."""
        while True:
            try:
                return self._execute_once(job_id, worker_id=worker_id)
            except Exception as exc:
                if not is_database_outage(exc):
                    raise
                log.warning("job %s met a database outage: it runs again once the database is back", job_id)
                time.sleep(RECORD_OUTAGE_RETRY_S)

    def _execute_once(self, job_id: str, *, worker_id: str) -> RunReport | None:
        job = self.load(job_id)
        if job is None:
            return None
        kind = self.registry.get(job.kind)
        started = time.perf_counter()
        ctx = self.context(job, worker_id=worker_id)
        self.app.metrics.jobs_running.inc()
        try:
            status, outcome, error = self.run_handler(kind, job.kind, ctx)
        finally:
            self.app.metrics.jobs_running.dec()
        run_s = time.perf_counter() - started
        recorded = self.record(job_id, worker_id=worker_id, status=status, outcome=outcome, error=error, run_s=run_s)
        if kind is not None and kind.partitioning is not None:
            forget_scratch(self.app, job.tenant_id, job_id)
        return RunReport(job_id, job.kind, status, job.wait_s, run_s, recorded)

    def run_handler(
        self, kind: JobKind | None, kind_name: str, ctx: JobContext
    ) -> tuple[str, JobOutcome | None, dict[str, Any] | None]:
        """Runs the handler; every way it can end becomes (status, outcome, error) — nothing escapes."""
        try:
            if kind is None:
                raise VigilError(f"No handler is registered for job kind {kind_name!r}.")
            return "succeeded", run_whole(kind, ctx), None
        except Exception as exc:
            if is_database_outage(exc):
                raise  # not the job's failure: `execute` runs it again once the database is back
            status, error = self.classify(exc, kind, job_id=ctx.job_id)
            return status, None, error

    def classify(self, exc: Exception, kind: JobKind | None, *, job_id: str) -> tuple[str, dict[str, Any]]:
        """How an exception out of a handler ends its job: (status, problem document)."""
        if isinstance(exc, JobCancelled):
            return "cancelled", {"title": "Cancelled", "detail": "Cancelled while running."}
        if isinstance(exc, self.soft_limit_errors):
            return "failed", time_limit_problem(kind.limits.soft_time_limit_s if kind else None, hard=False)
        if isinstance(exc, MemoryError):
            limit = self.app.settings.worker_max_memory_mb
            detail = "The job needed more memory than a worker process may take"
            error = JobOutOfMemory(f"{detail} ({limit} MiB)." if limit else f"{detail}.", limit_mb=limit)
            return "failed", problem_of(error)
        if not isinstance(exc, VigilError) or exc.status >= 500:
            log.error("job %s (%s) failed", job_id, kind.name if kind else "?", exc_info=exc)
        return "failed", problem_of(exc)

    # -- recording -------------------------------------------------------------------------------------------
    def record(
        self,
        job_id: str,
        *,
        worker_id: str,
        status: str,
        outcome: JobOutcome | None,
        error: dict[str, Any] | None,
        run_s: float,
    ) -> bool:
        """`finish`, again and again while the database is unavailable: a job that ran while the database went
        away was left `running`, owned by a worker that stays alive (so never recovered), for good — found by the
        disaster-recovery suite. The worker's heartbeat keeps the job its own meanwhile; the outcome is kept."""
        while True:
            try:
                return self.finish(
                    job_id, worker_id=worker_id, status=status, outcome=outcome, error=error, run_s=run_s
                )
            except Exception as exc:
                if not is_database_outage(exc):
                    raise
                log.warning("job %s ended while the database is unavailable: recorded when it returns", job_id)
                time.sleep(RECORD_OUTAGE_RETRY_S)

    def finish(
        self,
        job_id: str,
        *,
        worker_id: str | None,
        status: str,
        outcome: JobOutcome | None = None,
        error: dict[str, Any] | None = None,
        run_s: float | None = None,
        attempt: int | None = None,
        _retry: int = 0,
    ) -> bool:
        """Records how a job ended — only if it is still running for us (owned by `worker_id`; or, for a
        partition's merge, any running job at `attempt`). Returns whether it was recorded; if not (cancelled or
        taken over meanwhile), the outcome's `discard` undoes what the handler made."""
        recorded = False
        try:
            with self.app.database.session() as session:
                queue = QueueRepository(session=session)
                if worker_id is not None:
                    job = queue.lock_owned(job_id=job_id, worker_id=worker_id)
                else:
                    job = queue.lock_running(job_id)
                    if job is not None and attempt is not None and job.attempts != attempt:
                        job = None
                if job is not None:
                    if outcome is not None and outcome.apply is not None:
                        outcome.apply(session)
                    self.close(
                        session, job, status, result=outcome.result if outcome else None, error=error, run_s=run_s
                    )
                    recorded = True
        except Exception as exc:
            if status != "succeeded" or is_database_outage(exc):
                raise  # an outage: the outcome is kept, and recorded when the database is back (`record`)
            if isinstance(exc, IntegrityError) and _retry < RECORD_RETRIES:
                # Two jobs of one subject finished at once (both took the next model version): the outcome is
                # recorded again in a fresh transaction, which sees the other's commit.
                return self.finish(
                    job_id,
                    worker_id=worker_id,
                    status=status,
                    outcome=outcome,
                    run_s=run_s,
                    attempt=attempt,
                    _retry=_retry + 1,
                )
            log.exception("job %s could not record its result", job_id)
            if outcome is not None and outcome.discard is not None:
                outcome.discard()
            return self.finish(
                job_id, worker_id=worker_id, status="failed", error=problem_of(exc), run_s=run_s, attempt=attempt
            )
        if not recorded and outcome is not None and outcome.discard is not None:
            outcome.discard()
        return recorded

    def close(
        self,
        session: Session,
        job: Job,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        run_s: float | None = None,
    ) -> None:
        """Ends a (locked) job: its final state, the kind's failure hook in the same transaction when it did not
        succeed, and a wake-up for whoever waits on the tenant's freed slot."""
        job.status = status
        job.finished_at = utcnow()
        job.result = result
        job.error = error
        job.worker_pid = None
        if run_s is not None:
            job.run_seconds = run_s
        if status == "succeeded":
            job.progress = 100.0
        if status != "succeeded":
            self.registry.on_unsuccessful(session, job, status, error or {})
        # Platform work inside whatever access the caller's session has (a tenant's request, a worker's queue).
        with platform_access(session):
            queue = QueueRepository(session=session, bind=False)
            queue.release_head_of(job.tenant_id)
            queue.wake()
        metrics = self.app.metrics
        metrics.jobs.labels(job.kind, status).inc()
        if job.started_at is not None and job.queued_at is not None and job.attempts:
            metrics.job_wait.labels(job.kind).observe(max(0.0, (job.started_at - job.queued_at).total_seconds()))
        if run_s is not None:
            metrics.job_duration.labels(job.kind).observe(run_s)
        self.app.job_wakeup.set()

    def interrupted(self, session: Session, job: Job, reason: dict[str, Any]) -> str:
        """An attempt ended without an outcome (its worker was lost, its lease ran out): requeue the job, or give
        it up after its attempts with the last reason. Returns the job's new status."""
        job.last_error = reason
        if job.cancel_requested:
            self.close(session, job, "cancelled", error={"title": "Cancelled", "detail": "Cancelled."})
        elif job.attempts >= job.max_attempts:
            error = JobInterrupted(
                f"The job was interrupted on each of its {job.attempts} attempts and was given up: "
                f"{reason.get('detail', 'its worker was lost')}",
                attempts=job.attempts,
                last_error=reason,
            )
            self.close(session, job, "failed", error=problem_of(error))
        else:
            job.status, job.worker_id, job.worker_pid, job.task_id = "queued", None, None, None
            job.progress, job.parts_total, job.parts_done = 0.0, 0, 0
            job.queued_at, job.dispatched_at = utcnow(), None
            with platform_access(session):
                QueueRepository(session=session, bind=False).wake()
            self.app.job_wakeup.set()
        return job.status

    def timed_out(self, session: Session, job: Job, limit_s: float | None) -> None:
        """The hard limit ended the job (its process was killed, or its thread was abandoned)."""
        self.close(session, job, "failed", error=time_limit_problem(limit_s, hard=True))

    # -- recovery --------------------------------------------------------------------------------------------
    def recover(self, *, everything_running: bool = False, keep: set[str] | None = None) -> int:
        """Requeues (or gives up) jobs whose owner fell silent past the lease — every running job when
        `everything_running` (this process owns the SQLite file, so no owner can be alive) — and fails jobs past
        their kind's hard limit that nobody ended. Returns how many were touched."""
        lease = timedelta(seconds=self.app.settings.job_lease_s)
        now = utcnow()
        cutoff = None if everything_running else now - lease
        silent = "the server restarted" if everything_running else "its worker fell silent past the lease"
        with self.app.database.session() as session:
            orphans = [j.id for j in QueueRepository(session=session).orphans(heartbeat_before=cutoff)]
            overdue = []
            for kind in self.registry.kinds.values():
                hard = kind.limits.time_limit_s
                if hard is not None:
                    started_before = now - timedelta(seconds=hard + OVERDUE_GRACE_S)
                    jobs = QueueRepository(session=session).running_since(kind=kind.name, started_before=started_before)
                    # A fanned-out job's parts have limits of their own.
                    overdue += [(j.id, hard) for j in jobs if not j.parts_total]
        touched = 0
        # One transaction per job: a failure hook narrows its session to the job's tenant.
        for job_id in orphans:
            if keep and job_id in keep:
                continue
            with self.app.database.session() as session:
                job = QueueRepository(session=session).lock_stale(job_id=job_id, heartbeat_before=cutoff)
                if job is not None:
                    self.interrupted(session, job, {"detail": f"Interrupted: {silent}.", "worker_id": job.worker_id})
                    touched += 1
        for job_id, hard in overdue:
            with self.app.database.session() as session:
                job = QueueRepository(session=session).lock_running(job_id)
                if job is not None:
                    self.timed_out(session, job, hard)
                    touched += 1
        if touched:
            log.warning("recovered %d job(s) left behind by stopped or stuck workers", touched)
        return touched

    def beat(self, worker: JobWorker) -> None:
        with self.app.database.session() as session:
            QueueRepository(session=session).beat(worker=worker)

    def hand_back(self, worker_id: str, *, reason: str) -> int:
        """A stopping worker's running jobs go back to the queue (or give up, past their attempts)."""
        with self.app.database.session() as session:
            queue = QueueRepository(session=session)
            owned = [job.id for job in queue.owned_by(worker_id)]
            queue.stopped(worker_id)
        for job_id in owned:
            with self.app.database.session() as session:
                job = QueueRepository(session=session).lock_owned(job_id=job_id, worker_id=worker_id)
                if job is not None:
                    self.interrupted(session, job, {"detail": reason, "worker_id": worker_id})
        return len(owned)
