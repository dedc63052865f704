"""A small scaled-out deployment the suite may break: two API processes and two workers on PostgreSQL (a fresh
database on the configured server), RabbitMQ (a queue of its own), Redis and moto's S3 server, each behind a
fault-proxy link — RabbitMQ behind two, the API processes' (`broker`) and the workers' (`broker-workers`), so the
workers can be partitioned from it alone — and every process one the suite can SIGKILL, SIGSTOP and restart."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from vigil.client import NO_RETRY, RetryPolicy, VigilClient
from vigil_validation.cluster import S3_ACCESS_KEY, S3_REGION, _create_bucket, _object_store, delete_queues
from vigil_validation.config import ClusterConfig
from vigil_validation.faults import FaultProxy, Link, through_link, upstream_of
from vigil_validation.faults.server import VigilProcess
from vigil_validation.spread import RoundRobinTransport
from vigil_validation.targets import _server_env, fresh_postgres_database

# A job whose worker went silent is requeued after this (the default, 60 s, would dominate the suite's time).
JOB_LEASE_S = 6


class _OwnedRoundRobin(RoundRobinTransport):
    """A round robin owned by one client: closing the client closes its connections (the session's shared one
    never closes them)."""

    def close(self) -> None:
        self.shutdown()


@dataclass
class ClusterDeployment:
    apis: list[VigilProcess]
    workers: list[VigilProcess]
    proxy: FaultProxy
    admin_email: str
    admin_password: str
    links: dict[str, Link] = field(default_factory=dict)

    def client(self, *, retries: int = 0, timeout: float = 30.0) -> VigilClient:
        """A client spreading its requests over every API process, one request each in turn."""
        transport = _OwnedRoundRobin([api.url for api in self.apis])
        retry = RetryPolicy(attempts=retries + 1, backoff_s=0.2) if retries else NO_RETRY
        return VigilClient(self.apis[0].url, timeout=timeout, transport=transport, retry=retry)

    def admin(self) -> VigilClient:
        client = self.client(retries=2)
        client.login(self.admin_email, self.admin_password)
        return client


def _workers_beating(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        1
        for line in text.splitlines()
        if line.startswith("vigil_job_worker_heartbeat_timestamp_seconds{") and 'kind="celery"' in line
    )


@contextlib.contextmanager
def cluster_deployment(
    *, config: ClusterConfig, log_dir: Path, request_timeout_s: float
) -> Iterator[ClusterDeployment]:
    log_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        proxy = stack.enter_context(FaultProxy())
        database = stack.enter_context(fresh_postgres_database(config.database_url))
        queue = f"vigil-dr-{uuid.uuid4().hex[:10]}"
        stack.callback(delete_queues, config.broker_url, queue)
        endpoint = stack.enter_context(_object_store(log_dir, 120.0))
        _create_bucket(endpoint, "vigil-dr")
        links = {
            "broker": proxy.add_link("broker", *upstream_of(config.broker_url, 5672)),
            "broker-workers": proxy.add_link("broker-workers", *upstream_of(config.broker_url, 5672)),
            "redis": proxy.add_link("redis", *upstream_of(config.redis_url, 6379)),
            "s3": proxy.add_link("s3", *upstream_of(endpoint, 80)),
        }
        root = Path(tempfile.mkdtemp(prefix="vigil-dr-cluster-"))
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        email = f"dr-admin-{uuid.uuid4().hex[:8]}@example.com"
        password = " ".join(secrets.token_hex(4) for _ in range(6))
        secret_key = secrets.token_urlsafe(48)
        shared = {
            "VIGIL_BROKER_QUEUE": queue,
            "VIGIL_BLOB_URL": "s3://vigil-dr/cluster",
            "VIGIL_BLOB_S3_ENDPOINT_URL": through_link(endpoint, links["s3"]),
            "VIGIL_BLOB_S3_REGION": S3_REGION,
            "VIGIL_BLOB_S3_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "VIGIL_BLOB_S3_SECRET_ACCESS_KEY": S3_ACCESS_KEY,
            "VIGIL_JOB_LEASE_S": str(JOB_LEASE_S),
            "VIGIL_REQUEST_TIMEOUT_S": f"{request_timeout_s:g}",
        }

        def env_for(name: str, broker: Link) -> dict[str, str]:
            env = _server_env(
                root / name,
                email=email,
                password=password,
                secret_key=secret_key,
                database=database,
                redis_url=through_link(config.redis_url, links["redis"]),
                extra=shared,
            )
            env["VIGIL_RATE_LIMIT_KEY_PREFIX"] = f"{queue}:"
            env["VIGIL_BROKER_URL"] = through_link(config.broker_url, broker)
            return env

        apis = [VigilProcess("serve", env_for(f"api-{n}", links["broker"]), log_dir / f"api-{n}.log") for n in range(2)]
        workers = [
            VigilProcess("worker", env_for(f"worker-{n}", links["broker-workers"]), log_dir / f"worker-{n}.log")
            for n in range(2)
        ]
        for process in (*apis, *workers):
            stack.callback(process.stop)
        apis[0].start()  # migrates first; the others then find the schema made
        for process in (apis[1], *workers):
            process.start(wait=False)
        apis[1].wait_ready()
        made = ClusterDeployment(apis, workers, proxy, email, password, links)
        wait_for_workers(made, 2)
        yield made


def wait_for_workers(deployment: ClusterDeployment, count: int, timeout: float = 240.0) -> None:
    import time  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if _workers_beating(deployment.apis[0].url) >= count:
                return
        time.sleep(0.5)
    raise TimeoutError(f"fewer than {count} workers were ready in {timeout:g}s")
