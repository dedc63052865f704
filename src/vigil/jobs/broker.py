"""The message broker as Vigil uses it (Celery on RabbitMQ, or Redis): the Celery application's configuration,
and the three things the API side does with it — publish a token that asks a worker to claim a job of a kind,
terminate the process running a cancelled job, and check the broker answers.

A message is a *token*, not the job: the worker that receives it claims the fairest queued job of that kind from
the database (`lifecycle.claim_next`), so broker order never decides fairness, a redelivered message never runs a
job twice, and a lost message costs only a delay (the outbox publishes unclaimed jobs again).
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import Celery
from kombu import Exchange, Queue  # type: ignore[attr-defined]

from vigil.config import Settings

RUN_TASK = "vigil.jobs.run"
PART_TASK = "vigil.jobs.part"
# A message still unacknowledged this long is redelivered by a Redis broker: longer than any job may run.
REDIS_VISIBILITY_TIMEOUT_S = 12 * 3600


def parts_queue(settings: Settings) -> str:
    return f"{settings.broker_queue}.parts"


def make_celery(settings: Settings) -> Celery:
    """The Celery application of a Vigil deployment; the same configuration for publishers and workers."""
    if settings.broker_url is None:
        raise ValueError("no broker configured (VIGIL_BROKER_URL)")
    name = settings.broker_queue
    app = Celery(f"vigil-{name}", broker=settings.broker_url, set_as_current=False)
    exchange = Exchange(name, type="direct")  # type: ignore[no-untyped-call]
    jobs_queue = Queue(name, exchange, routing_key=name)  # type: ignore[no-untyped-call]
    part_queue = Queue(parts_queue(settings), exchange, routing_key=parts_queue(settings))  # type: ignore[no-untyped-call]
    max_memory = settings.worker_max_memory_mb
    app.conf.update(
        task_default_queue=name,
        task_default_exchange=name,
        task_default_routing_key=name,
        task_queues=(jobs_queue, part_queue),
        task_routes={PART_TASK: {"queue": parts_queue(settings), "routing_key": parts_queue(settings)}},
        # Remote control (terminate on cancel) and events on exchanges of our own: deployments (and test runs)
        # sharing a broker never hear each other.
        control_exchange=f"{name}.control",
        event_exchange=f"{name}.events",
        worker_send_task_events=False,
        task_send_sent_event=False,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        # Fail safe: a message is acknowledged only when its work is done; a worker that dies hands it back.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A broker blip must not kill running jobs: the job row, not the message, says who runs what.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Children are recycled when bloated (RSS, KiB) or after many tasks; the hard cap is set in each child.
        worker_max_memory_per_child=int(max_memory * 1024 * 0.8) if max_memory else None,
        worker_max_tasks_per_child=settings.worker_max_tasks_per_child,
        # SIGTERM: running jobs may finish within the grace period, then they are handed back.
        worker_soft_shutdown_timeout=settings.worker_shutdown_grace_s,
        worker_enable_soft_shutdown_on_idle=True,
        worker_hijack_root_logger=False,
        broker_connection_timeout=settings.broker_connect_timeout_s,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": REDIS_VISIBILITY_TIMEOUT_S},
    )
    return app


class Broker:
    """Publishing side of the broker; one per process (a component of the app context)."""

    def __init__(self, settings: Settings, celery: Celery | None = None) -> None:
        self.settings = settings
        self.celery = celery or make_celery(settings)

    def publish(self, *, kind: str, hint: str, soft_time_limit_s: float | None, time_limit_s: float | None) -> str:
        """A token asking a worker to claim the next `kind` job (`hint`: the job it was published for)."""
        task_id = f"{hint}.{uuid.uuid4().hex[:8]}"
        self.celery.send_task(
            RUN_TASK,
            args=[kind, hint],
            task_id=task_id,
            queue=self.settings.broker_queue,
            routing_key=self.settings.broker_queue,
            soft_time_limit=soft_time_limit_s,
            time_limit=time_limit_s,
            retry=False,
        )
        return task_id

    def publish_part(
        self,
        *,
        job_id: str,
        attempt: int,
        index: int,
        spec: dict[str, Any],
        soft_time_limit_s: float | None,
        time_limit_s: float | None,
    ) -> None:
        self.celery.send_task(
            PART_TASK,
            args=[job_id, attempt, index, spec],
            task_id=f"{job_id}.a{attempt}.p{index}",
            queue=parts_queue(self.settings),
            routing_key=parts_queue(self.settings),
            soft_time_limit=soft_time_limit_s,
            time_limit=time_limit_s,
            retry=False,
        )

    def terminate(self, task_id: str) -> None:
        """Kills the worker process running `task_id`, wherever it is (a cancelled job stops within a second)."""
        self.celery.control.revoke(task_id, terminate=True, signal="SIGKILL")

    def ping(self) -> None:
        """Connects to the broker (raises if it does not answer within the connect timeout)."""
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=self.settings.broker_connect_timeout_s)

    def close(self) -> None:
        self.celery.close()
