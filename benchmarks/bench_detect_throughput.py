"""Scoring throughput through the API vs. the same fitted model called directly, measured in the same run.

Starts a real `vigil serve` on a free port with a fresh data directory, trains an Isolation Forest through the API,
then times `POST /detectors/{id}/detect` with a Parquet body of 200,000 rows x 16 columns (Parquet response) against
`decision_function` of the very model the server stored (loaded and verified from its data directory).

    python benchmarks/bench_detect_throughput.py [--rows 200000] [--columns 16] [--repeats 5]

Prints the ratio api_throughput / direct_throughput (target: >= 0.7).
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pyarrow.parquet as pq

from vigil import ml

PASSWORD = "benchmark passphrase that is long"
SECRET = "benchmark-secret-key-0123456789abcdefghijklmnop"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VIGIL_DATA_DIR": str(data_dir),
        "VIGIL_SECRET_KEY": SECRET,
        "VIGIL_BOOTSTRAP_ADMIN_EMAIL": "bench@vigil.local",
        "VIGIL_BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        "VIGIL_LOG_LEVEL": "WARNING",
    }
    env.pop("VIGIL_DATABASE_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "vigil", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not become ready")


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--columns", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    names = [f"x{i}" for i in range(args.columns)]
    train = pl.DataFrame(rng.normal(size=(20_000, args.columns)), schema=names)
    score = pl.DataFrame(rng.normal(size=(args.rows, args.columns)), schema=names)
    body = parquet_bytes(score)

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_server(Path(tmp), port)
        try:
            api = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=300)
            token = api.post("/auth/token", json={"email": "bench@vigil.local", "password": PASSWORD}).json()
            api.headers["Authorization"] = f"Bearer {token['access_token']}"
            dataset = api.post(
                "/datasets?name=train",
                content=parquet_bytes(train),
                headers={"Content-Type": "application/vnd.apache.parquet"},
            ).json()
            detector = api.post("/detectors", json={"name": "bench", "algorithm": "iforest"}).json()
            job = api.post(f"/detectors/{detector['id']}/train", json={"dataset_id": dataset["id"]}).json()
            while (job := api.get(f"/jobs/{job['id']}").json())["status"] not in ("succeeded", "failed"):
                time.sleep(0.1)
            assert job["status"] == "succeeded", job

            headers = {"Content-Type": "application/vnd.apache.parquet", "Accept": "application/vnd.apache.parquet"}
            url = f"/detectors/{detector['id']}/detect"
            api.post(url, content=body, headers=headers)  # warm-up: loads and caches the model
            api_times, api_scores = [], None
            for _ in range(args.repeats):
                started = time.perf_counter()
                response = api.post(url, content=body, headers=headers)
                api_scores = pq.read_table(io.BytesIO(response.content)).column("score").to_numpy()
                api_times.append(time.perf_counter() - started)

            artifact = next(Path(tmp, "blobs").rglob(f"{job['id']}.vmdl")).read_bytes()
            model = ml.load_artifact(artifact, key=SECRET.encode())
            X = score.to_numpy()
            direct_times, direct_scores = [], None
            for _ in range(args.repeats):
                started = time.perf_counter()
                direct_scores = model.estimator.decision_function(X)
                direct_times.append(time.perf_counter() - started)
        finally:
            server.terminate()
            server.wait(30)

    assert api_scores is not None
    assert direct_scores is not None
    np.testing.assert_allclose(api_scores, direct_scores)
    api_s, direct_s = statistics.median(api_times), statistics.median(direct_times)
    ratio = direct_s / api_s
    print(f"rows={args.rows} columns={args.columns} model=IForest(n_estimators=100) repeats={args.repeats}")
    print(f"direct decision_function: {direct_s:.3f} s  ({args.rows / direct_s:,.0f} rows/s)")
    print(
        f"through the API (Parquet in, Parquet out, HTTP on loopback): {api_s:.3f} s  ({args.rows / api_s:,.0f} rows/s)"
    )
    print(f"throughput ratio api/direct = {ratio:.2f}  (target >= 0.70: {'met' if ratio >= 0.7 else 'NOT met'})")


if __name__ == "__main__":
    main()
