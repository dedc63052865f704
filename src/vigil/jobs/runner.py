"""The in-process executor (the embedded default, no broker): worker threads of the API process that claim queued
jobs from the database and run their handlers.

The database is the queue, so job state survives a crash: a job left `running` by a dead server is requeued —
at start-up on SQLite (one server owns the file: it holds its lock), or once its owner's heartbeat is older than
the lease on PostgreSQL (several servers may share it) — and given up after its attempts. Idle threads sleep
until an enqueue in this process (an event) or, on PostgreSQL, in any process (LISTEN/NOTIFY) wakes them; the
poll interval is only a safety net.

Threads cannot be killed: a cancelled job stops at its handler's next progress report, a job past its soft limit
likewise; one past its hard limit is recorded failed and its thread abandoned (its late outcome is refused).
Workers that must be stoppable at any instant, or whose memory must be capped, are Celery's (`vigil worker`).
"""

from __future__ import annotations

import logging
import os
import threading

from vigil.core.context import AppContext
from vigil.jobs.keeper import Keeper, new_node
from vigil.jobs.lifecycle import JobLifecycle

log = logging.getLogger("vigil.jobs")


class InProcessRunner:
    def __init__(self, *, app: AppContext, lifecycle: JobLifecycle, workers: int) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.workers = workers
        self.node = new_node("in-process", workers)
        self.worker_id = self.node.id
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: set[str] = set()
        self._running_lock = threading.Lock()
        self._claim_lock = threading.Lock()
        self.keeper = Keeper(app=app, lifecycle=lifecycle, node=self.node, running=self.running)

    def running(self) -> set[str]:
        with self._running_lock:
            return set(self._running)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.keeper.start(own_the_database=self.app.settings.is_sqlite)
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"vigil-job-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.app.job_wakeup.set()
        self.keeper.stop(timeout)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

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
                self.lifecycle.execute(job_id, worker_id=self.worker_id)
            except Exception:  # a worker thread must outlive any one job (and a database outage)
                log.exception("job %s could not be run or recorded", job_id)
            finally:
                with self._running_lock:
                    self._running.discard(job_id)
                # Another job may be claimable now (this one's slot is free): look before sleeping.
                self.app.job_wakeup.set()

    def _claim_next(self) -> str | None:
        """One claim at a time per process; across processes the lifecycle's per-tenant locks keep the caps."""
        with self._claim_lock:
            job_id = self.lifecycle.claim_next(worker_id=self.worker_id, worker_pid=os.getpid())
            if job_id is not None:
                with self._running_lock:
                    self._running.add(job_id)
            return job_id
