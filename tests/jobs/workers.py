"""A scaled-out deployment for tests: the API in the test process (PostgreSQL, a broker, its outbox dispatcher)
and real `vigil worker` processes on the same database, queue and blob store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import PostgresUrls, app_role, fresh_database, make_settings
from tests.jobs.conftest import TENANT
from tests.jobs.kinds import register_test_kinds
from tests.support.cluster import BROKER_URL, Process, own_queue, require_broker, settings_env, start_worker
from vigil.app import create_app
from vigil.config import Settings
from vigil.core.context import AppContext
from vigil.core.database import bind_platform
from vigil.identity.models import Tenant
from vigil.jobs.models import JobWorker
from vigil.jobs.registry import JobRegistry

SECRET = "test-secret-key-that-is-long-enough-0123456789"


@dataclass
class Deployment:
    settings: Settings
    client: TestClient
    app: AppContext
    tmp: Path
    worker_values: dict[str, object]
    workers: list[Process] = field(default_factory=list)

    def add_worker(self, *, concurrency: int = 1, **overrides: object) -> Process:
        n = len(self.workers)
        values = {**self.worker_values, "data_dir": self.tmp / f"worker-{n}", **overrides}
        process = start_worker(settings_env(values), self.tmp / f"worker-{n}.log", concurrency=concurrency)
        self.workers.append(process)
        return process

    def wait_nodes(self, count: int, timeout: float = 90) -> list[JobWorker]:
        """Until `count` live workers have registered (their main process beats once it is ready)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = {w.pid for w in self.live_workers()}
            with self.app.database.session() as session:
                bind_platform(session)
                nodes = [
                    n
                    for n in session.query(JobWorker).all()
                    if n.kind == "celery" and n.stopped_at is None and n.pid in live
                ]
                for node in nodes:
                    session.expunge(node)
            if len(nodes) >= count:
                return nodes
            time.sleep(0.2)
        raise AssertionError(
            f"{count} worker(s) not ready in {timeout}s:\n" + "\n".join(w.tail() for w in self.workers)
        )

    def live_workers(self) -> list[Process]:
        return [w for w in self.workers if w.alive()]

    def worker_of(self, node_id: str) -> Process:
        """The worker process whose node id is `node_id` (`celery@host:PID:…`)."""
        pid = int(node_id.split(":")[1])
        return next(w for w in self.workers if w.pid == pid)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One deployment with two workers for a module's tests (starting workers is the slow part); a test that kills
    a worker starts a replacement."""
    with fresh_database() as url, app_role(url) as urls:
        factory = _deployments(urls, tmp_path_factory.mktemp("cluster"))
        try:
            deployment = next(factory)(worker_max_memory_mb=2048)
            deployment.add_worker()
            deployment.add_worker()
            deployment.wait_nodes(2)
            yield deployment
        finally:
            factory.close()


@pytest.fixture
def deployment(postgres_urls: PostgresUrls, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """Builds a deployment on demand (`deployment(**settings)`); stops every worker and deletes the queue."""
    yield from _deployments(postgres_urls, tmp_path)


def _deployments(postgres_urls: PostgresUrls, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    require_broker()
    made: list[Deployment] = []
    with own_queue() as queue:

        def make(api: dict[str, object] | None = None, **overrides: Any) -> Deployment:
            """`overrides` apply to the API and the workers, `api` to the API only."""
            values: dict[str, object] = {
                "database_url": postgres_urls.app,
                "database_admin_url": postgres_urls.admin,
                "broker_url": BROKER_URL,
                "broker_queue": queue,
                "blob_dir": tmp_path / "blobs",
                "secret_key": SECRET,
                "job_lease_s": 3.0,
                "job_dispatch_interval_s": 1.0,
                "job_redispatch_after_s": 5.0,
                "job_poll_interval_s": 0.5,
                "worker_shutdown_grace_s": 1.0,
                "worker_max_memory_mb": 2048,
                "log_level": "WARNING",
                "log_json": "false",
                "environment": "test",
                **overrides,
            }
            api_values = {k: v for k, v in {**values, **(api or {})}.items() if k not in ("secret_key",)}
            settings = make_settings(tmp_path / "api", **api_values)
            application = create_app(settings)
            register_test_kinds(application.state.context.component(JobRegistry))
            client = TestClient(application, raise_server_exceptions=False)
            client.__enter__()
            with application.state.context.database.session() as session:
                bind_platform(session)
                session.add(Tenant(id=TENANT, name=TENANT, status="active", settings={}))
            deployment = Deployment(
                settings=settings, client=client, app=application.state.context, tmp=tmp_path, worker_values=values
            )
            made.append(deployment)
            return deployment

        try:
            yield make
        finally:
            for deployment in made:
                for worker in deployment.workers:
                    worker.stop(grace=5)
                deployment.client.__exit__(None, None, None)
