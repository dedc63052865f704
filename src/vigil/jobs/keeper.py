"""What keeps an executor node honest, in one background thread: its heartbeat (and its running jobs': they
live as long as it does), the recovery sweep (jobs whose owner fell silent past the lease are requeued or given
up; jobs past their hard limit are ended), housekeeping chores (dataset retention, pruning old job records), and
— on PostgreSQL — a LISTEN connection that wakes the executor the moment work is committed anywhere."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy.orm import Session

from vigil.core.context import AppContext
from vigil.core.database import utcnow
from vigil.core.notify import Listener
from vigil.jobs.lifecycle import JobLifecycle
from vigil.jobs.models import JobWorker
from vigil.jobs.repository import WAKE_CHANNEL, QueueRepository

log = logging.getLogger("vigil.jobs")
PRUNE_BATCH = 1000

# Each tenant's retention in days (None: the platform's `job_retention_days`): wired by `vigil.app` from the
# identity domain's tenant policies, which the job machinery does not know.
RetentionOf = Callable[[Session, list[str]], Mapping[str, int | None]]


def node_id(kind: str) -> str:
    host = socket.gethostname()[:32]
    return f"{kind}@{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def new_node(kind: str, concurrency: int) -> JobWorker:
    return JobWorker(
        id=node_id(kind), kind=kind, hostname=socket.gethostname()[:255], pid=os.getpid(), concurrency=concurrency
    )


class Keeper:
    def __init__(
        self,
        *,
        app: AppContext,
        lifecycle: JobLifecycle,
        node: JobWorker | None,
        running: Callable[[], set[str]] = set,
    ) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.node = node
        self.running = running  # jobs this process is running right now: never "orphans", whatever the clock says
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: Listener | None = None
        self._chores: list[tuple[str, float, Callable[[], object]]] = []
        self._chores_due: dict[str, float] = {}

    def add_chore(self, name: str, *, every_s: float, chore: Callable[[], object]) -> None:
        """A chore run at start and then every `every_s` (e.g. the retention sweep): domains bring their own."""
        self._chores.append((name, every_s, chore))

    def start(self, *, own_the_database: bool = False) -> None:
        if self.node is not None:
            self.lifecycle.beat(self.node)
        # One server on a SQLite file (it holds the file's lock): whatever is `running` was left by a dead process.
        self.lifecycle.recover(everything_running=own_the_database)
        self.run_chores(force=True)
        if not self.app.settings.is_sqlite:
            self._listener = Listener(
                database_url=self.app.settings.database_url_resolved,
                channel=WAKE_CHANNEL,
                on_notify=self.app.job_wakeup.set,
            )
            self._listener.start()
        self._thread = threading.Thread(target=self._loop, name="vigil-job-keeper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        interval = max(0.2, self.app.settings.job_lease_s / 3)
        while not self._stop.wait(interval):
            self.tick()

    def tick(self) -> None:
        try:
            if self.node is not None:
                self.lifecycle.beat(self.node)
            self.lifecycle.recover(keep=self.running())
        except Exception:  # the database may be briefly away; the next round retries
            log.exception("job lease upkeep failed")
        self.run_chores()

    def run_chores(self, *, force: bool = False) -> None:
        now = time.monotonic()
        for name, every_s, chore in self._chores:
            if not force and now < self._chores_due.get(name, 0.0):
                continue
            self._chores_due[name] = now + every_s
            try:
                chore()
            except Exception:  # the next round retries
                log.exception("housekeeping %s failed", name)


def prune_job_records(app: AppContext, retention_of: RetentionOf) -> int:
    """Deletes finished job records older than their tenant's retention (or `job_retention_days`), and forgets
    executor nodes silent for a day. Returns how many jobs were deleted."""
    now = utcnow()
    deleted = 0
    with app.database.session() as session:
        queue = QueueRepository(session=session)
        tenants = queue.tenants_with_finished_jobs()
        days = dict(retention_of(session, tenants)) if tenants else {}
        queue.forget_workers(silent_since=now - timedelta(days=1))
    for tenant in tenants:
        keep_days = days.get(tenant) or app.settings.job_retention_days
        while True:
            with app.database.session() as session:
                n = QueueRepository(session=session).prune(
                    tenant_id=tenant, finished_before=now - timedelta(days=keep_days), limit=PRUNE_BATCH
                )
            deleted += n
            if n < PRUNE_BATCH:
                break
    if deleted:
        log.info("pruned %d finished job record(s) past retention", deleted)
    return deleted


def job_metrics(app: AppContext) -> Iterator[Metric]:
    """The deployment's job figures, read from the database at scrape time (the same in every API process):
    queue depth per kind, running jobs per tenant, executor nodes' last heartbeats."""
    depth = GaugeMetricFamily("vigil_job_queue_depth", "Jobs queued, by kind", labels=["kind"])
    running = GaugeMetricFamily("vigil_jobs_running_by_tenant", "Jobs running, by tenant", labels=["tenant"])
    beats = GaugeMetricFamily(
        "vigil_job_worker_heartbeat_timestamp_seconds",
        "Last heartbeat of each executor node (Unix time): alert on time() minus this",
        labels=["worker", "kind"],
    )
    up = GaugeMetricFamily("vigil_job_metrics_up", "Whether the job figures could be read from the database")
    try:
        with app.database.session() as session:
            queue = QueueRepository(session=session)
            for kind, n in sorted(queue.queue_depth().items()):
                depth.add_metric([kind], n)
            for tenant, n in sorted(queue.running_per_tenant().items()):
                running.add_metric([tenant], n)
            for node in queue.workers():
                beats.add_metric([node.id, node.kind], node.heartbeat_at.timestamp())
        up.add_metric([], 1)
    except Exception:  # a scrape must answer even when the database does not
        log.warning("job metrics unavailable", exc_info=True)
        up.add_metric([], 0)
    yield from (depth, running, beats, up)
