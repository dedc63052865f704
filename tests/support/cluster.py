"""Real scale-out pieces for tests: a RabbitMQ queue of the test's own (deleted afterwards, with the exchanges
Celery declared for it — never anything another test or engineer made), `vigil worker` processes (each in its own
process group, so a test can SIGKILL a whole worker: main process and children), and a moto S3 server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vigil_validation.cluster import delete_queues

BROKER_URL = os.environ.get("VIGIL_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
REPO = Path(__file__).resolve().parents[2]


def services_required() -> bool:
    return os.environ.get("VIGIL_REQUIRE_SERVICES") == "1"


def require_broker(url: str = BROKER_URL) -> None:
    """Skips the test when the broker is unreachable (fails it when services are required, as in CI)."""
    from kombu import Connection  # noqa: PLC0415

    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        if services_required():
            pytest.fail(f"the broker is required (VIGIL_REQUIRE_SERVICES=1) but unreachable at {url}: {exc}")
        pytest.skip(f"broker not reachable at {url}: {exc}")


@contextlib.contextmanager
def own_queue(url: str = BROKER_URL) -> Iterator[str]:
    """A queue name of our own; afterwards its queues and the exchanges Celery declared for it are deleted."""
    name = f"vigil-test-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        delete_queues(url, name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    """A child process in a session (process group) of its own, with its output in a log file."""

    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill_group(self) -> None:
        """SIGKILL of the main process and every child: a machine that died."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def stop(self, grace: float = 15.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
        self.kill_group()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_process(command: list[str], env: dict[str, str], log: Path) -> Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = log.open("ab")
    popen = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    out.close()
    return Process(popen=popen, log=log)


def start_worker(env: dict[str, str], log: Path, *, concurrency: int = 1) -> Process:
    """`vigil worker` (with the test kinds) as a real process."""
    command = [sys.executable, "-m", "tests.jobs.worker_main", "--concurrency", str(concurrency)]
    return start_process(command, env, log)


def settings_env(values: dict[str, object]) -> dict[str, str]:
    """VIGIL_* variables for a worker process to build the same settings as the test's app."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    for key, value in values.items():
        if value is None:
            continue
        env[f"VIGIL_{key.upper()}"] = str(value)
    return env


@contextlib.contextmanager
def moto_server() -> Iterator[tuple[str, Process]]:
    """moto's S3 API server on a free loopback port; yields its endpoint URL and process."""
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"moto-{port}.log"
    process = start_process(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], dict(os.environ), log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_port(port, timeout=30, process=process)
        yield url, process
    finally:
        process.stop(grace=5)
        log.unlink(missing_ok=True)


def wait_port(port: int, *, timeout: float, process: Process | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise AssertionError(f"process exited before listening on {port}:\n{process.tail()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port} after {timeout}s")


def create_bucket(endpoint: str, bucket: str) -> None:
    import pyarrow.fs as pafs  # noqa: PLC0415

    host = endpoint.removeprefix("http://")
    fs = pafs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        scheme="http",
        endpoint_override=host,
        allow_bucket_creation=True,
    )
    fs.create_dir(bucket)
