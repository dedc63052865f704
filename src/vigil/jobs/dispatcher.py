"""The outbox dispatcher: publishes every queued job's token to the broker after the enqueuing transaction has
committed, and publishes again what nobody claimed (a broker that was down at submit time, or lost messages,
loses no job). Runs as a thread in every API process when a broker is configured, and in every worker; on
PostgreSQL several dispatchers share the work (`FOR UPDATE SKIP LOCKED`), and a duplicate token is harmless."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from vigil.core.context import AppContext
from vigil.core.database import utcnow
from vigil.jobs.broker import Broker
from vigil.jobs.registry import JobRegistry
from vigil.jobs.repository import QueueRepository

log = logging.getLogger("vigil.jobs.dispatcher")
BATCH = 200


class Dispatcher:
    def __init__(self, *, app: AppContext, registry: JobRegistry, broker: Broker) -> None:
        self.app = app
        self.registry = registry
        self.broker = broker
        self.wakeup = app.job_wakeup
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._broker_down = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="vigil-job-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.wakeup.clear()
            try:
                while self.dispatch() == BATCH:  # a backlog goes out in batches, without waiting between them
                    pass
            except Exception:  # the database may be briefly away; the next round retries
                log.exception("job dispatch failed")
            self.wakeup.wait(self.app.settings.job_dispatch_interval_s)

    def dispatch(self) -> int:
        """Publishes the outbox once; returns how many tokens were published."""
        settings = self.app.settings
        published: list[str] = []
        with self.app.database.session() as session:
            queue = QueueRepository(session=session)
            due = queue.to_dispatch(
                published_before=utcnow() - timedelta(seconds=settings.job_redispatch_after_s), limit=BATCH
            )
            for job in due:
                kind = self.registry.get(job.kind)
                limits = kind.limits if kind is not None else None
                try:
                    self.broker.publish(
                        kind=job.kind,
                        hint=job.id,
                        soft_time_limit_s=limits.soft_time_limit_s if limits else None,
                        time_limit_s=limits.time_limit_s if limits else None,
                    )
                except Exception as exc:  # the broker is down: the jobs stay in the outbox for the next round
                    if not self._broker_down:
                        log.warning(
                            "broker unreachable (%s): %d job(s) wait in the outbox", type(exc).__name__, len(due)
                        )
                    self._broker_down = True
                    break
                published.append(job.id)
            queue.mark_dispatched(published)
        if published and self._broker_down:
            log.info("broker reachable again: publishing the outbox")
            self._broker_down = False
        return len(published)
