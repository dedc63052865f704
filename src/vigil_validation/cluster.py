"""The **cluster** target: the scaled-out topology, started and torn down by the suite — several PostgreSQL-backed
`vigil serve` processes (the suite's client spreads its requests over them), several `vigil worker` processes,
RabbitMQ (a queue of the run's own), Redis (a key prefix of the run's own) and an S3 API server (moto's, started
here) holding the blobs.

Every dependency's URL is decided in one place, `dependency_links`: today each is the server itself; a fault proxy
(`vigil_validation.faults`) can put any link — database, Redis, broker, object store — behind a proxy there,
and every process of the cluster then reaches it through that proxy.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from vigil_validation.targets import (
    PostgresDatabase,
    Target,
    TargetUnreachable,
    _redacted,
    _server_env,
    free_port,
    fresh_postgres_database,
    log_tail,
    stop_process,
    wait_ready,
)

S3_ACCESS_KEY = "validation"
S3_REGION = "us-east-1"


@dataclass(frozen=True)
class ClusterOptions:
    database_url: str
    redis_url: str
    broker_url: str
    api_processes: int = 2
    workers: int = 2
    worker_concurrency: int = 1
    object_store_url: str | None = None  # None: start moto's S3 server for the run
    startup_timeout: float = 120.0
    keep_data: bool = False
    server_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DependencyLinks:
    """Where the cluster's processes find each dependency (the one place a fault proxy would go in between)."""

    database: PostgresDatabase
    redis_url: str
    broker_url: str
    object_store_endpoint: str


def dependency_links(
    *, database: PostgresDatabase, redis_url: str, broker_url: str, object_store_endpoint: str
) -> DependencyLinks:
    """Each dependency as the cluster reaches it. Put a link through a fault proxy here (and nowhere else): e.g.
    `broker_url=through_link(broker_url, proxy.add_link("broker", host, port))`."""
    return DependencyLinks(
        database=database, redis_url=redis_url, broker_url=broker_url, object_store_endpoint=object_store_endpoint
    )


@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log: IO[bytes] = log_path.open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        yield process
    finally:
        stop_process(process)
        log.close()


def _wait_port(port: int, timeout: float, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TargetUnreachable(f"the S3 server exited:\n{log_tail(log_path)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise TargetUnreachable(f"the S3 server did not listen on {port} within {timeout:g}s")


@contextlib.contextmanager
def _object_store(report_dir: Path, timeout: float) -> Iterator[str]:
    """moto's S3 API server on a free loopback port, with the run's bucket; yields its endpoint."""
    port = free_port()
    log_path = report_dir / "s3.log"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _process(command, dict(os.environ), log_path) as process:
        _wait_port(port, timeout, process, log_path)
        yield f"http://127.0.0.1:{port}"


def _create_bucket(endpoint: str, bucket: str) -> None:
    import pyarrow.fs as pafs  # noqa: PLC0415 - only the cluster target needs it

    fs = pafs.S3FileSystem(
        access_key=S3_ACCESS_KEY,
        secret_key=S3_ACCESS_KEY,
        region=S3_REGION,
        scheme="http",
        endpoint_override=endpoint.removeprefix("http://"),
        allow_bucket_creation=True,
    )
    fs.create_dir(bucket)


def delete_queues(broker_url: str, queue: str) -> None:
    """The run's own queues and the exchanges Celery declared for them; nothing else on the broker."""
    from kombu import Connection  # type: ignore[attr-defined]  # noqa: PLC0415

    with contextlib.suppress(Exception), Connection(broker_url, connect_timeout=3) as connection:  # type: ignore[no-untyped-call]
        for name in (queue, f"{queue}.parts"):
            with contextlib.suppress(Exception), connection.channel() as channel:
                channel.queue_delete(name)
        for name in (queue, f"{queue}.control.pidbox", f"reply.{queue}.control.pidbox", f"{queue}.events"):
            with contextlib.suppress(Exception), connection.channel() as channel:
                channel.exchange_delete(name)


def _workers_ready(url: str, count: int, timeout: float, processes: list[subprocess.Popen[bytes]]) -> None:
    """Until the API's /metrics lists `count` Celery workers' heartbeats (each beats once it is ready)."""
    deadline = time.monotonic() + timeout
    seen = 0
    with httpx.Client(timeout=5.0) as http:
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in processes):
                raise TargetUnreachable("a worker exited before it was ready")
            with contextlib.suppress(httpx.HTTPError):
                text = http.get(f"{url}/metrics").text
                seen = sum(
                    1
                    for line in text.splitlines()
                    if line.startswith("vigil_job_worker_heartbeat_timestamp_seconds{") and 'kind="celery"' in line
                )
                if seen >= count:
                    return
            time.sleep(0.5)
    raise TargetUnreachable(f"{seen} of {count} workers were ready within {timeout:g}s")


@contextlib.contextmanager
def cluster_target(*, report_dir: Path, options: ClusterOptions) -> Iterator[Target]:
    """Starts the whole cluster, yields its target once every process is ready, and tears it all down (processes,
    database, queues), whatever happened in between."""
    report_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(fresh_postgres_database(options.database_url))
        queue = f"vigil-validation-{uuid.uuid4().hex[:10]}"
        stack.callback(delete_queues, options.broker_url, queue)
        if options.object_store_url is None:
            endpoint = stack.enter_context(_object_store(report_dir, options.startup_timeout))
            bucket_url = "s3://vigil-validation/cluster"
            _create_bucket(endpoint, "vigil-validation")
        else:
            endpoint, bucket_url = options.object_store_url, "s3://vigil-validation/cluster"
        links = dependency_links(
            database=database,
            redis_url=options.redis_url,
            broker_url=options.broker_url,
            object_store_endpoint=endpoint,
        )
        root = Path(tempfile.mkdtemp(prefix="vigil-cluster-"))
        if not options.keep_data:
            stack.callback(shutil.rmtree, root, ignore_errors=True)
        email = f"validation-admin-{uuid.uuid4().hex[:8]}@example.com"
        password = " ".join(secrets.token_hex(4) for _ in range(6))
        secret_key = secrets.token_urlsafe(48)
        shared = {
            "VIGIL_BROKER_URL": links.broker_url,
            "VIGIL_BROKER_QUEUE": queue,
            "VIGIL_BLOB_URL": bucket_url,
            "VIGIL_BLOB_S3_ENDPOINT_URL": links.object_store_endpoint,
            "VIGIL_BLOB_S3_REGION": S3_REGION,
            "VIGIL_BLOB_S3_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "VIGIL_BLOB_S3_SECRET_ACCESS_KEY": S3_ACCESS_KEY,
            **options.server_env,
        }

        def env_for(name: str) -> dict[str, str]:
            env = _server_env(
                root / name,
                email=email,
                password=password,
                secret_key=secret_key,
                database=links.database,
                redis_url=links.redis_url,
                extra=shared,
            )
            # One rate-limit key prefix for the whole cluster (`_server_env` draws one per process).
            env["VIGIL_RATE_LIMIT_KEY_PREFIX"] = f"{queue}:"
            return env

        urls: list[str] = []
        logs: list[Path] = []
        for n in range(options.api_processes):
            port = free_port()
            url, log_path = f"http://127.0.0.1:{port}", report_dir / f"api-{n}.log"
            command = [sys.executable, "-m", "vigil", "serve", "--host", "127.0.0.1", "--port", str(port)]
            process = stack.enter_context(_process(command, env_for(f"api-{n}"), log_path))
            try:
                wait_ready(url, timeout=options.startup_timeout, process=process)
            except TargetUnreachable as exc:
                raise TargetUnreachable(f"{exc}\n--- last lines of {log_path} ---\n{log_tail(log_path)}") from exc
            urls.append(url)
            logs.append(log_path)
        workers = []
        for n in range(options.workers):
            log_path = report_dir / f"worker-{n}.log"
            command = [
                sys.executable, "-m", "vigil", "worker", "--concurrency", str(options.worker_concurrency),
                "--loglevel", "WARNING",
            ]  # fmt: skip
            workers.append(stack.enter_context(_process(command, env_for(f"worker-{n}"), log_path)))
            logs.append(log_path)
        try:
            _workers_ready(urls[0], options.workers, options.startup_timeout, workers)
        except TargetUnreachable as exc:
            tails = "\n".join(f"--- {p} ---\n{log_tail(p)}" for p in logs if p.name.startswith("worker"))
            raise TargetUnreachable(f"{exc}\n{tails}") from exc
        description = (
            f"cluster: {options.api_processes} API processes {', '.join(urls)} and {options.workers} workers on "
            f"PostgreSQL {_redacted(database.app_url)}, broker {_redacted(options.broker_url)} (queue {queue}), "
            f"Redis {options.redis_url}, S3 {endpoint}"
        )
        yield Target(
            url=urls[0],
            kind="cluster",
            admin_email=email,
            admin_password=password,
            description=description,
            database=f"PostgreSQL {_redacted(database.app_url)} (role {database.role}, row-level security)",
            server_log=str(logs[0]),
            data_dir=str(root),
            signing_key=secret_key,
            database_app_url=database.app_url,
            api_urls=tuple(urls),
        )
