"""`vigil worker`: a Celery worker that runs Vigil's job handlers in prefork children.

Failing safe is the point:
- a message is a token: the child claims the fairest queued job of its kind in the database (`lifecycle`), so a
  redelivered or duplicated message never runs a job twice;
- messages are acknowledged late and handed back when a child dies (`task_reject_on_worker_lost`); prefetch 1;
- each child has an address-space cap (`VIGIL_WORKER_MAX_MEMORY_MB`): a job that needs more fails with
  `job-out-of-memory`, it never takes the machine down; bloated children are recycled;
- per-kind soft limits fail the job with `job-time-limit`, hard limits kill the child and record the same;
- a child that dies (SIGKILL, the kernel's OOM killer, a crash) gets its job requeued — or given up after its
  attempts, with the reason — by the worker's main process; a whole worker that dies stops beating, and its jobs
  are requeued after the lease by whoever sweeps first;
- a cancelled job's child is killed: the API asks through the broker (revoke + terminate), and the main process
  double-checks the database twice a second for cancelled jobs its children still run;
- SIGTERM lets running jobs finish within the grace period (`VIGIL_WORKER_SHUTDOWN_GRACE_S`), then kills them
  and hands their jobs back to the queue.

The main process also runs the outbox dispatcher and the keeper (heartbeats, recovery sweep), and can serve its
own `/metrics` (job duration and wait histograms per kind).
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billiard.exceptions import WorkerLostError
from celery import signals
from celery.exceptions import SoftTimeLimitExceeded
from celery.worker.request import Request
from prometheus_client import start_http_server

from vigil.core.context import AppContext
from vigil.jobs.broker import PART_TASK, RUN_TASK, Broker, parts_queue
from vigil.jobs.dispatcher import Dispatcher
from vigil.jobs.keeper import Keeper, new_node
from vigil.jobs.lifecycle import JobLifecycle
from vigil.jobs.models import JobWorker
from vigil.jobs.registry import JobCancelled, JobOutcome, forget_scratch, problem_of
from vigil.jobs.repository import QueueRepository

log = logging.getLogger("vigil.jobs.worker")
CANCEL_WATCH_S = 0.5
# A cancelled job's child gets this long to notice by itself (at a progress report) before it is killed.
CANCEL_GRACE_S = 1.0


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int
    metrics_port: int | None = None
    loglevel: str = "INFO"
    # Imports the libraries jobs use, in the main process before it forks its children: each child inherits them,
    # and none imports one late in a big job, under its memory cap, where mapping a library's code can fail (a
    # genuine model then would not load).
    preload: Callable[[], None] | None = None


class WorkerRuntime:
    """The state of one `vigil worker`: the node, its lifecycle, and what its main process supervises."""

    def __init__(self, *, app: AppContext, lifecycle: JobLifecycle, broker: Broker, node: JobWorker) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.broker = broker
        self.node = node
        self.keeper = Keeper(app=app, lifecycle=lifecycle, node=node)
        self.dispatcher = Dispatcher(app=app, registry=lifecycle.registry, broker=broker)
        self.active: dict[str, Request] = {}  # task id → request running in a child (main process)
        self.active_lock = threading.Lock()
        self.pool: Any = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- the child's side ------------------------------------------------------------------------------------
    def in_child(self) -> None:
        """A fresh prefork child: its own database connections, one BLAS thread, its memory cap."""
        self.app.database.engine.dispose(close=False)  # the parent's pooled connections are not ours
        try:
            from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # noqa: PLC0415

            threadpool_limits(1)  # each child is one core's worth of work: concurrency is the pool size
        except Exception:
            log.debug("could not limit BLAS threads", exc_info=True)
        limit_mb = self.app.settings.worker_max_memory_mb
        if limit_mb:
            cap = limit_mb * 1024 * 1024
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            resource.setrlimit(
                resource.RLIMIT_AS, (cap, hard if hard != resource.RLIM_INFINITY and hard < cap else cap)
            )

    def run(self, task_id: str, kind: str) -> dict[str, Any]:
        """A token for `kind`: claim the fairest queued job of that kind, and run it (or fan it out)."""
        job_id = self.lifecycle.claim_next(worker_id=self.node.id, worker_pid=os.getpid(), task_id=task_id, kind=kind)
        if job_id is None:
            return {"claimed": None}
        job = self.lifecycle.load(job_id)
        registered = self.lifecycle.registry.get(kind)
        if job is not None and registered is not None and registered.partitioning is not None:
            fanned = self._fan_out(job_id)
            if fanned is not None:
                return fanned
        report = self.lifecycle.execute(job_id, worker_id=self.node.id)
        if report is None:
            return {"claimed": job_id}
        return {
            "claimed": job_id,
            "kind": report.kind,
            "status": report.status,
            "wait_s": report.wait_s,
            "run_s": report.run_s,
        }

    def _fan_out(self, job_id: str) -> dict[str, Any] | None:
        """Splits a partitioned job; more than one part goes out as part tasks (None: run it here, whole)."""
        job = self.lifecycle.load(job_id)
        assert job is not None
        registered = self.lifecycle.registry.get(job.kind)
        assert registered is not None
        plan = registered.partitioning
        assert plan is not None
        ctx = self.lifecycle.context(job, worker_id=self.node.id)
        try:
            parts = plan.split(ctx)
        except Exception as exc:
            status, error = self.lifecycle.classify(exc, registered, job_id=job_id)
            self.lifecycle.finish(job_id, worker_id=self.node.id, status=status, error=error)
            return {"claimed": job_id, "status": status}
        if len(parts) <= 1:
            return None
        with self.app.database.session() as session:
            row = QueueRepository(session=session).lock_owned(job_id=job_id, worker_id=self.node.id)
            if row is None:
                return {"claimed": job_id, "status": "gone"}
            row.parts_total = len(parts)
        limits = plan.part_limits
        for index, spec in enumerate(parts):
            self.broker.publish_part(
                job_id=job_id,
                attempt=job.attempt,
                index=index,
                spec=spec,
                soft_time_limit_s=limits.soft_time_limit_s,
                time_limit_s=limits.time_limit_s,
            )
        return {"claimed": job_id, "parts": len(parts)}

    def run_part(self, job_id: str, attempt: int, index: int, spec: dict[str, Any]) -> dict[str, Any]:
        """One partition of a fanned-out job; the last one to finish merges and records the job."""
        job = self.lifecycle.load(job_id)
        if job is None or job.attempt != attempt:
            return {"part": index, "status": "stale"}
        registered = self.lifecycle.registry.get(job.kind)
        assert registered is not None
        plan = registered.partitioning
        assert plan is not None
        ctx = self.lifecycle.context(job, worker_id=None)
        with self.app.database.session() as session:
            row = QueueRepository(session=session).lock_running(job_id)
            if row is None or row.attempts != attempt or row.cancel_requested:
                return {"part": index, "status": "stale"}
            total = row.parts_total
        share = 90.0 / max(1, total)
        started = time.perf_counter()
        try:
            summary = plan.run_part(ctx.scaled(5 + index * share, 5 + (index + 1) * share), index, spec)
            ctx.store_part_summary(index, summary)
        except JobCancelled:
            return {"part": index, "status": "cancelled"}
        except Exception as exc:
            failed, problem = self.lifecycle.classify(exc, registered, job_id=job_id)
            self.lifecycle.finish(job_id, worker_id=None, attempt=attempt, status=failed, error=problem)
            forget_scratch(self.app, job.tenant_id, job_id)
            return {"part": index, "status": failed}
        with self.app.database.session() as session:
            done, total = QueueRepository(session=session).part_done(job_id)
        if done < total:
            return {"part": index, "status": "done", "run_s": time.perf_counter() - started}
        # The last part: merge every part's summary into the job's outcome, and record it.
        outcome: JobOutcome | None = None
        error: dict[str, Any] | None = None
        try:
            outcome = plan.merge(ctx.scaled(95, 100), ctx.part_summaries(total))
            status = "succeeded"
        except Exception as exc:
            status, error = "failed", problem_of(exc)
            log.exception("merging the parts of job %s failed", job_id)
        self.lifecycle.finish(
            job_id, worker_id=None, attempt=attempt, status=status, outcome=outcome, error=error, run_s=None
        )
        forget_scratch(self.app, job.tenant_id, job_id)
        return {"part": index, "status": status, "merged": True, "kind": job.kind, "wait_s": job.wait_s}

    # -- the main process's side -----------------------------------------------------------------------------
    def started(self, pool: Any) -> None:
        self.pool = pool
        self.keeper.start()
        self.dispatcher.start()
        self._watcher = threading.Thread(target=self._watch_cancellations, name="vigil-cancel-watch", daemon=True)
        self._watcher.start()

    def stopping(self) -> None:
        self._stop.set()
        self.dispatcher.stop()
        self.keeper.stop()
        handed = self.lifecycle.hand_back(self.node.id, reason="Interrupted: its worker was shut down.")
        if handed:
            log.warning("handed %d running job(s) back to the queue", handed)

    def accepted(self, request: Request) -> None:
        with self.active_lock:
            self.active[request.id] = request

    def ended(self, request: Request) -> None:
        with self.active_lock:
            self.active.pop(request.id, None)

    def child_lost(self, request: Request, exc: BaseException) -> None:
        """A child died running `request` (killed, out of memory, crashed): its job is requeued or given up."""
        reason = {"detail": f"Interrupted: the worker process running it was lost ({exc}).", "worker_id": self.node.id}
        with self.app.database.session() as session:
            job = QueueRepository(session=session).by_task(request.id)
            if job is not None:
                status = self.lifecycle.interrupted(session, job, reason)
                log.warning("job %s lost its worker process (%s): now %s", job.id, exc, status)

    def hard_timeout(self, request: Request, limit_s: float) -> None:
        with self.app.database.session() as session:
            job = QueueRepository(session=session).by_task(request.id)
            if job is not None:
                self.lifecycle.timed_out(session, job, limit_s)
                log.warning("job %s killed at its hard time limit (%ss)", job.id, limit_s)

    def _watch_cancellations(self) -> None:
        """Kills children still running jobs that were cancelled (in case the broker's revoke did not reach us)."""
        while not self._stop.wait(CANCEL_WATCH_S):
            with self.active_lock:
                active = dict(self.active)
            if not active or self.pool is None:
                continue
            try:
                with self.app.database.session() as session:
                    stale = QueueRepository(session=session).cancelled_tasks(list(active), grace_s=CANCEL_GRACE_S)
                for task_id in stale:
                    request = active.get(task_id)
                    if request is not None and request.worker_pid:
                        log.info("terminating the process of cancelled task %s", task_id)
                        request.terminate(self.pool, signal=signal.SIGKILL)
            except Exception:  # the next round retries
                log.exception("cancel watch failed")


class JobRequest(Request):  # type: ignore[misc]
    """Celery's request, as the worker's main process sees it: which child runs which task, and what to record
    when a child dies or runs past its hard limit (the child itself can no longer say)."""

    @property
    def runtime(self) -> WorkerRuntime:
        runtime: WorkerRuntime = self.task.vigil_runtime
        return runtime

    def on_accepted(self, pid: int, time_accepted: float) -> None:
        super().on_accepted(pid, time_accepted)
        self.runtime.accepted(self)

    def on_success(self, failed__retval__runtime: Any, **kwargs: Any) -> None:
        super().on_success(failed__retval__runtime, **kwargs)
        self.runtime.ended(self)
        failed, retval, _ = failed__retval__runtime
        if not failed and isinstance(retval, dict) and retval.get("kind") and retval.get("status"):
            metrics = self.runtime.app.metrics
            metrics.jobs.labels(retval["kind"], retval["status"]).inc()
            if retval.get("run_s") is not None:
                metrics.job_duration.labels(retval["kind"]).observe(float(retval["run_s"]))
            if retval.get("wait_s") is not None:
                metrics.job_wait.labels(retval["kind"]).observe(float(retval["wait_s"]))

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> None:
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
        self.runtime.ended(self)
        exc = getattr(exc_info, "exception", None)
        exc = getattr(exc, "exc", exc)  # ExceptionWithTraceback
        if isinstance(exc, WorkerLostError) and not getattr(self, "_already_revoked", False):
            try:
                self.runtime.child_lost(self, exc)
            except Exception:  # the lease sweep requeues it later
                log.exception("could not record the loss of task %s", self.id)

    def on_timeout(self, soft: bool, timeout: float) -> None:
        super().on_timeout(soft, timeout)
        if not soft:
            self.runtime.ended(self)
            try:
                self.runtime.hard_timeout(self, timeout)
            except Exception:  # the overdue sweep ends it later
                log.exception("could not record the hard time limit of task %s", self.id)


def run_worker(app: AppContext, lifecycle: JobLifecycle, options: WorkerOptions) -> int:
    """Runs a Celery worker in this process until it is stopped; returns its exit code."""
    broker = app.component(Broker)
    celery = broker.celery
    runtime = WorkerRuntime(app=app, lifecycle=lifecycle, broker=broker, node=new_node("celery", options.concurrency))
    lifecycle.soft_limit_errors = (*lifecycle.soft_limit_errors, SoftTimeLimitExceeded)

    @celery.task(  # type: ignore[untyped-decorator]
        name=RUN_TASK, bind=True, Request=JobRequest, acks_late=True, reject_on_worker_lost=True
    )
    def run_job(task: Any, kind: str, hint: str) -> dict[str, Any]:
        return runtime.run(task.request.id, kind)

    @celery.task(  # type: ignore[untyped-decorator]
        name=PART_TASK, bind=True, Request=JobRequest, acks_late=True, reject_on_worker_lost=True
    )
    def run_part(task: Any, job_id: str, attempt: int, index: int, spec: dict[str, Any]) -> dict[str, Any]:
        return runtime.run_part(job_id, attempt, index, spec)

    run_job.vigil_runtime = runtime
    run_part.vigil_runtime = runtime

    def child_init(**_: Any) -> None:
        runtime.in_child()

    def ready(sender: Any = None, **_: Any) -> None:
        runtime.started(getattr(sender, "pool", None))

    def shutting_down(**_: Any) -> None:
        runtime.stopping()

    # weak=False: these closures have no other reference.
    signals.worker_process_init.connect(child_init, weak=False)
    signals.worker_ready.connect(ready, weak=False)
    signals.worker_shutdown.connect(shutting_down, weak=False)
    if options.metrics_port is not None:
        start_http_server(options.metrics_port, addr="127.0.0.1", registry=app.metrics.registry)
    queues = f"{app.settings.broker_queue},{parts_queue(app.settings)}"
    argv = [
        "worker",
        f"--concurrency={options.concurrency}",
        f"--queues={queues}",
        f"--loglevel={options.loglevel}",
        f"--hostname={runtime.node.id.replace('@', '-')}@%h",
        "--pool=prefork",
        # Gossip, mingle and event heartbeats serve Flower-style monitoring of many workers; the job rows and
        # `job_workers` do that here, and the broker stays free of the chatter (Flower still works with -E).
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if options.preload is not None:
        options.preload()
    try:
        celery.worker_main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
