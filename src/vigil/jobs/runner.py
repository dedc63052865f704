"""The in-process executor: worker threads that claim queued jobs from the database and run their handlers.

The database is the queue, so job state survives a crash: a job left `running` by a dead server is requeued —
at start-up on SQLite (one server owns the file), or once its heartbeat is older than the lease on PostgreSQL
(several servers may share it) — and given up after `MAX_ATTEMPTS`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.core.context import AppContext
from vigil.core.database import TenantScope, utcnow
from vigil.core.errors import VigilError, problem_type_uri
from vigil.jobs.models import Job
from vigil.jobs.registry import JobCancelled, JobContext, JobOutcome, JobRegistry
from vigil.jobs.repository import QueueRepository
from vigil.jobs.scheduling import fair_order

log = logging.getLogger("vigil.jobs")
MAX_ATTEMPTS = 3
PROGRESS_WRITE_INTERVAL_S = 0.25
RECORD_RETRIES = 3


def problem_of(exc: BaseException) -> dict[str, Any]:
    """A job's error, shaped like the problem document the API would have returned."""
    if isinstance(exc, VigilError):
        return {
            "type": problem_type_uri(exc.slug),
            "title": exc.title,
            "status": exc.status,
            "detail": exc.detail,
            **exc.extra,
        }
    return {
        "type": problem_type_uri("internal"),
        "title": "Internal server error",
        "status": 500,
        "detail": f"The job failed unexpectedly ({type(exc).__name__}).",
    }


# Each tenant's cap on running jobs (its `concurrent_jobs` quota): the job machinery knows no tenant policy, so the
# domain that owns quotas hands this in (wired by `vigil.app`). A tenant missing from the answer gets the default.
TenantCaps = Callable[[Session, list[str]], Mapping[str, int]]


class InProcessRunner:
    def __init__(
        self, *, app: AppContext, registry: JobRegistry, workers: int, tenant_caps: TenantCaps | None = None
    ) -> None:
        self.app = app
        self.registry = registry
        self.tenant_caps = tenant_caps
        self.workers = workers
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: set[str] = set()
        self._running_lock = threading.Lock()
        self._claim_lock = threading.Lock()
        self._chores: list[tuple[str, float, Callable[[], object]]] = []
        self._chores_due: dict[str, float] = {}

    def add_housekeeping(self, name: str, *, every_s: float, chore: Callable[[], object]) -> None:
        """A chore run at start and then every `every_s` (e.g. the retention sweep): domains bring their own."""
        self._chores.append((name, every_s, chore))

    def run_housekeeping(self, *, force: bool = False) -> None:
        now = time.monotonic()
        for name, every_s, chore in self._chores:
            if not force and now < self._chores_due.get(name, 0.0):
                continue
            self._chores_due[name] = now + every_s
            try:
                chore()
            except Exception:  # the next round retries
                log.exception("housekeeping %s failed", name)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.recover_orphans(at_startup=True)
        self.run_housekeeping(force=True)
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"vigil-job-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        keeper = threading.Thread(target=self._keep_leases, name="vigil-job-leases", daemon=True)
        keeper.start()
        self._threads.append(keeper)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.app.job_wakeup.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    # -- recovery --------------------------------------------------------------------------------------------
    def recover_orphans(self, *, at_startup: bool = False) -> int:
        lease = timedelta(seconds=self.app.settings.job_lease_s)
        own_the_database = self.app.settings.is_sqlite and at_startup
        with self.app.database.session() as session:
            queue = QueueRepository(session=session)
            orphans = queue.orphans(heartbeat_before=None if own_the_database else utcnow() - lease)
            with self._running_lock:
                orphans = [job for job in orphans if job.id not in self._running]
            for job in orphans:
                self._requeue(session, job)
        if orphans:
            log.warning("requeued %d job(s) left running by a stopped worker", len(orphans))
            self.app.job_wakeup.set()
        return len(orphans)

    def _requeue(self, session: Session, job: Job) -> None:
        if job.cancel_requested:
            self._close(session, job, "cancelled", error={"title": "Cancelled", "detail": "Cancelled."})
        elif job.attempts >= MAX_ATTEMPTS:
            error = {
                "type": problem_type_uri("internal"),
                "title": "Job interrupted",
                "status": 500,
                "detail": f"The job was interrupted {job.attempts} times and was given up.",
            }
            self._close(session, job, "failed", error=error)
        else:
            job.status, job.worker_id, job.progress = "queued", None, 0.0

    def _keep_leases(self) -> None:
        interval = max(0.5, self.app.settings.job_lease_s / 3)
        while not self._stop.wait(interval):
            try:
                with self._running_lock:
                    running = list(self._running)
                with self.app.database.session() as session:
                    queue = QueueRepository(session=session)
                    for job_id in running:
                        job = queue.get(job_id)
                        if job is not None and job.status == "running":
                            job.heartbeat_at = utcnow()
                self.recover_orphans()
                self.run_housekeeping()
            except Exception:  # the database may be briefly away; the next round retries
                log.exception("job lease upkeep failed")

    # -- work ------------------------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self._claim_next()
            except Exception:
                log.exception("could not claim a job")
                job_id = None
            if job_id is None:
                self.app.job_wakeup.wait(self.app.settings.job_poll_interval_s)
                self.app.job_wakeup.clear()
                continue
            try:
                self._run(job_id)
            finally:
                with self._running_lock:
                    self._running.discard(job_id)

    def _claim_next(self) -> str | None:
        """Claims the next job fairly across tenants (`scheduling.fair_order`), within each tenant's cap.

        One claim at a time per process, so this server's workers never overshoot a tenant's cap; servers sharing
        a PostgreSQL database may, for a moment, by one each."""
        with self._claim_lock, self.app.database.session() as session:
            queue = QueueRepository(session=session)
            heads = queue.queue_heads()
            if not heads:
                return None
            tenants = list(heads)
            caps = dict(self.tenant_caps(session, tenants)) if self.tenant_caps else {}
            order = fair_order(
                heads, queue.tenant_load(tenants), caps, default_cap=self.app.settings.quota_concurrent_jobs
            )
            for job_id in order:
                if queue.claim(job_id=job_id, worker_id=self.worker_id):
                    with self._running_lock:
                        self._running.add(job_id)
                    return job_id
        return None

    def _run(self, job_id: str) -> None:
        with self.app.database.session() as session:
            job = QueueRepository(session=session).get(job_id)
            if job is None:
                return
            kind_name, scope, payload = job.kind, TenantScope(job.tenant_id), dict(job.payload)
        kind = self.registry.get(kind_name)
        started = time.perf_counter()
        self.app.metrics.jobs_running.inc()
        last_write = [0.0]

        def report(percent: float) -> None:
            now = time.monotonic()
            if percent < 100 and now - last_write[0] < PROGRESS_WRITE_INTERVAL_S:
                return
            last_write[0] = now
            with self.app.database.session() as s:
                if QueueRepository(session=s).heartbeat(job_id=job_id, progress=percent):
                    raise JobCancelled

        try:
            if kind is None:
                raise VigilError(f"No handler is registered for job kind {kind_name!r}.")
            context = JobContext(job_id=job_id, scope=scope, payload=payload, app=self.app, report=report)
            outcome = kind.run(context)
        except JobCancelled:
            self._finish(job_id, "cancelled", error={"title": "Cancelled", "detail": "Cancelled while running."})
        except Exception as exc:
            if not isinstance(exc, VigilError) or exc.status >= 500:
                log.exception("job %s (%s) failed", job_id, kind_name)
            self._finish(job_id, "failed", error=problem_of(exc))
        else:
            self._finish(job_id, "succeeded", outcome=outcome)
        finally:
            self.app.metrics.jobs_running.dec()
            self.app.metrics.job_duration.labels(kind_name).observe(time.perf_counter() - started)

    def _finish(
        self,
        job_id: str,
        status: str,
        *,
        outcome: JobOutcome | None = None,
        error: dict[str, Any] | None = None,
        attempt: int = 0,
    ) -> None:
        try:
            with self.app.database.session() as session:
                job = QueueRepository(session=session).get(job_id)
                if job is None or job.status != "running" or job.worker_id != self.worker_id:
                    return  # requeued or taken over meanwhile: its new owner reports it
                if outcome is not None and outcome.apply is not None:
                    outcome.apply(session)
                self._close(session, job, status, result=outcome.result if outcome else None, error=error)
        except Exception as exc:
            if status != "succeeded":
                raise
            if isinstance(exc, IntegrityError) and attempt < RECORD_RETRIES:
                # Two jobs of one subject finished at once (both took the next model version): the outcome is
                # recorded again in a fresh transaction, which sees the other's commit.
                self._finish(job_id, status, outcome=outcome, attempt=attempt + 1)
                return
            log.exception("job %s could not record its result", job_id)
            self._finish(job_id, "failed", error=problem_of(exc))

    def _close(
        self,
        session: Session,
        job: Job,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        job.status = status
        job.finished_at = utcnow()
        job.result = result
        job.error = error
        if status == "succeeded":
            job.progress = 100.0
        kind = self.registry.get(job.kind)
        if status != "succeeded" and kind is not None and kind.on_unsuccessful is not None:
            kind.on_unsuccessful(session, job, status, error or {})
        self.app.metrics.jobs.labels(job.kind, status).inc()
