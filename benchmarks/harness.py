"""What the benchmarks share: a real `vigil serve` on a free port with a fresh data directory, a logged-in client,
a detector trained through the API, and the very model the server stored, loaded from its data directory."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

from vigil import ml
from vigil.core.secrets import ARTIFACTS, derive_key

EMAIL = "bench@vigil.local"
PASSWORD = "benchmark passphrase that is long"
SECRET = "benchmark-secret-key-0123456789abcdefghijklmnop"
PARQUET = "application/vnd.apache.parquet"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]

    def api(self, timeout: float = 300) -> httpx.Client:
        """A client of `/api/v1`, logged in as the bootstrap superadmin."""
        client = httpx.Client(base_url=f"{self.url}/api/v1", timeout=timeout)
        token = client.post("/auth/token", json={"email": EMAIL, "password": PASSWORD}).json()
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        return client

    def stored_model(self, job_id: str) -> ml.FittedDetector:
        """The artifact the training job wrote, verified and loaded as the server loads it."""
        artifact = next(Path(self.data_dir, "blobs").rglob(f"{job_id}.vmdl")).read_bytes()
        return ml.load_artifact(artifact, key=derive_key(SECRET.encode(), ARTIFACTS))


@contextlib.contextmanager
def running_server(*, wrapper: Sequence[str] = (), env: dict[str, str] | None = None) -> Iterator[Server]:
    """`vigil serve` on SQLite in a temporary directory (optionally under a profiler: `wrapper`), stopped after."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server_env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        server_env.update(
            {
                "VIGIL_DATA_DIR": tmp,
                "VIGIL_SECRET_KEY": SECRET,
                "VIGIL_BOOTSTRAP_ADMIN_EMAIL": EMAIL,
                "VIGIL_BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
                "VIGIL_LOG_LEVEL": "WARNING",
                # Limits stay on (their cost is part of every request) but far above what a benchmark sends.
                "VIGIL_RATE_LIMIT_PER_USER": "10000000/minute",
                "VIGIL_RATE_LIMIT_PER_API_KEY": "10000000/minute",
                "VIGIL_RATE_LIMIT_PER_IP": "10000000/minute",
                **(env or {}),
            }
        )
        serve = ["-m", "vigil", "serve", "--port", str(port)]
        command = [*wrapper, *serve] if wrapper else [sys.executable, *serve]
        process = subprocess.Popen(command, env=server_env, stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the server did not become ready")
                time.sleep(0.2)
            wait_warm(url, deadline=time.monotonic() + 180)
            yield Server(url=url, data_dir=Path(tmp), process=process)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def wait_warm(url: str, *, deadline: float) -> None:
    """Until the server has imported its detector libraries in the background (`/metrics` says so): those imports
    hold the interpreter lock for seconds after start, and a benchmark measures the server as it runs after that."""
    while b"vigil_detector_libraries_warm 1.0" not in httpx.get(f"{url}/metrics", timeout=10).content:
        if time.monotonic() > deadline:
            raise SystemExit("the server did not finish importing its detector libraries")
        time.sleep(0.2)


def server_cpu_seconds(url: str) -> float:
    """The server process's CPU seconds so far (`process_cpu_seconds_total` on `/metrics`): on a shared machine
    CPU time is a steadier measure of work done than wall time, which includes waiting for a processor."""
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("process_cpu_seconds_total "):
            return float(line.split()[1])
    raise SystemExit("the server does not report process_cpu_seconds_total")


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def random_frame(rows: int, columns: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(rng.normal(size=(rows, columns)), schema=[f"x{i}" for i in range(columns)])


def upload(api: httpx.Client, frame: pl.DataFrame, name: str = "train") -> dict[str, Any]:
    response = api.post(f"/datasets?name={name}", content=parquet_bytes(frame), headers={"Content-Type": PARQUET})
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def wait_job(api: httpx.Client, job_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = api.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            assert job["status"] == "succeeded", job
            return job
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} still {job['status']} after {timeout}s")
        time.sleep(0.02)


def train(
    api: httpx.Client, dataset_id: str, *, algorithm: str = "iforest", parameters: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A detector trained on the dataset through the API: (detector, finished training job)."""
    detector = api.post(
        "/detectors", json={"name": f"bench-{algorithm}", "algorithm": algorithm, "parameters": parameters or {}}
    ).json()
    job = api.post(f"/detectors/{detector['id']}/train", json={"dataset_id": dataset_id}).json()
    return detector, wait_job(api, job["id"])


PAUSE_S = 0.002


def timed(call: Callable[[], object], count: int, pause_s: float = PAUSE_S) -> list[float]:
    """Each call's wall time, with a short untimed pause between calls. The pause matters on a loaded machine:
    a process that computes back to back is scheduled behind one that sleeps between bursts (as a server does
    while the client reads its answer), so a direct baseline without pauses would look slower than it is."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
        time.sleep(pause_s)
    return times


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def verdict(ratio: float, target: float, *, higher_is_better: bool = True) -> str:
    met = ratio >= target if higher_is_better else ratio <= target
    return "met" if met else "NOT met"
