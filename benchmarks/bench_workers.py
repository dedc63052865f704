"""Scale-out with Celery workers: one worker vs two, in the same run, on real processes (PostgreSQL, RabbitMQ).

* 20 training jobs submitted at once: the time from the first submission to the last job's end;
* the partitioned scoring of a 2,000,000-row dataset (one job, fanned out by row groups): submission to end;
* the queue's own overhead per job: a job's end-to-end time (created → finished) minus its handler's own time
  (`run_seconds`), for small jobs submitted one at a time (so no job waits behind another): median and p90.

Each figure with one worker is the baseline of the same figure with two: the printed ratio (two over one) should
be at most 0.7 on a 2-core machine; the overhead's median should be at most 150 ms.

    python benchmarks/bench_workers.py [--rows 2000000] [--trainings 20] [--broker amqp://…] [--database …]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import psycopg
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from vigil.app import create_app
from vigil.config import Settings
from vigil.core.database import bind_platform
from vigil.jobs.models import Job, JobWorker
from vigil_validation.cluster import delete_queues

ADMIN, PASSWORD = "bench@vigil.test", "a long benchmark passphrase 1"
SECRET = "benchmark-secret-key-that-is-long-enough-012345"


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[str]:
    url = make_url(server)
    name = f"vigil_bench_{uuid.uuid4().hex[:10]}"
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def own_queue(broker: str) -> Iterator[str]:
    queue = f"vigil-bench-{uuid.uuid4().hex[:10]}"
    try:
        yield queue
    finally:
        delete_queues(broker, queue)


class Bench:
    def __init__(self, settings: Settings, env: dict[str, str], tmp: Path) -> None:
        self.settings, self.env, self.tmp = settings, env, tmp
        self.app = create_app(settings)
        self.client = TestClient(self.app)
        self.client.__enter__()
        self.context = self.app.state.context
        token = self.client.post("/api/v1/auth/token", json={"email": ADMIN, "password": PASSWORD}).json()
        root = {"Authorization": f"Bearer {token['access_token']}"}
        tenant = self.client.post(
            "/api/v1/tenants", json={"name": "bench", "quotas": {"concurrent_jobs": 64}}, headers=root
        ).json()
        user = self.client.post(
            "/api/v1/users",
            json={"email": "a@bench.test", "password": PASSWORD, "role": "analyst", "tenant_id": tenant["id"]},
            headers=root,
        )
        assert user.status_code == 201, user.text
        token = self.client.post("/api/v1/auth/token", json={"email": "a@bench.test", "password": PASSWORD}).json()
        self.headers = {"Authorization": f"Bearer {token['access_token']}"}
        self.workers: list[subprocess.Popen[bytes]] = []

    def close(self) -> None:
        self.stop_workers()
        self.client.__exit__(None, None, None)

    # -- workers ---------------------------------------------------------------------------------------------
    def start_workers(self, count: int) -> None:
        self.stop_workers()
        for n in range(count):
            env = {**self.env, "VIGIL_DATA_DIR": str(self.tmp / f"worker-{n}")}
            log = (self.tmp / f"worker-{n}.log").open("ab")
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "vigil", "worker", "--concurrency", "1", "--loglevel", "WARNING"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            live = {w.pid for w in self.workers}
            with self.context.database.session() as session:
                bind_platform(session)
                ready = [n for n in session.query(JobWorker).all() if n.pid in live and n.stopped_at is None]
            if len(ready) == count:
                return
            time.sleep(0.5)
        raise SystemExit(f"workers not ready; see {self.tmp}/worker-*.log")

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        self.workers = []

    # -- work ------------------------------------------------------------------------------------------------
    def upload(self, frame: pl.DataFrame, name: str) -> str:
        body = io.BytesIO()
        frame.write_parquet(body)
        answer = self.client.post(
            f"/api/v1/datasets?name={name}",
            content=body.getvalue(),
            headers={**self.headers, "Content-Type": "application/vnd.apache.parquet"},
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def detector(self, algorithm: str, parameters: dict[str, object]) -> str:
        answer = self.client.post(
            "/api/v1/detectors",
            json={"name": algorithm, "algorithm": algorithm, "parameters": parameters, "contamination": 0.05},
            headers=self.headers,
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def train(self, detector_id: str, dataset_id: str) -> str:
        answer = self.client.post(
            f"/api/v1/detectors/{detector_id}/train", json={"dataset_id": dataset_id}, headers=self.headers
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    def wait(self, job_ids: list[str], timeout: float = 1800) -> list[Job]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.context.database.session() as session:
                bind_platform(session)
                jobs = session.query(Job).filter(Job.id.in_(job_ids)).all()
                for job in jobs:
                    session.expunge(job)
            if all(j.status in ("succeeded", "failed", "cancelled") for j in jobs):
                failed = [j for j in jobs if j.status != "succeeded"]
                assert not failed, [j.error for j in failed]
                return jobs
            time.sleep(0.05)
        raise SystemExit("jobs did not finish")


def makespan(jobs: list[Job]) -> float:
    return (max(j.finished_at for j in jobs if j.finished_at) - min(j.created_at for j in jobs)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--trainings", type=int, default=20)
    parser.add_argument("--overhead-jobs", type=int, default=15)
    parser.add_argument(
        "--broker", default=os.environ.get("VIGIL_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    )
    parser.add_argument(
        "--database",
        default=os.environ.get("VIGIL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with (
        fresh_database(args.database) as database,
        own_queue(args.broker) as queue,
        tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp_name,
    ):
        tmp = Path(tmp_name)
        values = {
            "database_url": database,
            "broker_url": args.broker,
            "broker_queue": queue,
            "secret_key": SECRET,
            "blob_dir": str(tmp / "blobs"),
            "bootstrap_admin_email": ADMIN,
            "bootstrap_admin_password": PASSWORD,
            "environment": "test",
            "log_level": "WARNING",
            "log_json": "false",
            "argon2_time_cost": "1",
            "argon2_memory_kib": "1024",
            "worker_max_memory_mb": "4096",
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        env.update({f"VIGIL_{k.upper()}": str(v) for k, v in values.items()})
        settings = Settings(data_dir=tmp / "api", **values)  # type: ignore[arg-type]
        bench = Bench(settings, env, tmp)
        try:
            small = bench.upload(pl.DataFrame({f"f{i}": rng.normal(size=2_000) for i in range(4)}), "small")
            medium = bench.upload(pl.DataFrame({f"f{i}": rng.normal(size=20_000) for i in range(6)}), "medium")
            big = bench.upload(pl.DataFrame({f"f{i}": rng.normal(size=args.rows) for i in range(4)}), "big")
            scorer = bench.detector("iforest", {"n_estimators": 100})
            results: dict[int, dict[str, float]] = {}
            overhead: list[float] = []
            for workers in (1, 2):
                bench.start_workers(workers)
                if workers == 1:
                    bench.wait([bench.train(scorer, big)])  # the model the scoring phase uses, trained once
                    quick = bench.detector("ecod", {})
                    for _ in range(args.overhead_jobs):  # one at a time: nothing waits behind anything
                        [job] = bench.wait([bench.train(quick, small)])
                        assert job.finished_at is not None
                        assert job.run_seconds is not None
                        overhead.append((job.finished_at - job.created_at).total_seconds() - job.run_seconds)
                trainers = [bench.detector("iforest", {"n_estimators": 150}) for _ in range(args.trainings)]
                trainings = bench.wait([bench.train(d, medium) for d in trainers])
                answer = bench.client.post(
                    f"/api/v1/detectors/{scorer}/detect", json={"dataset_id": big}, headers=bench.headers
                )
                assert answer.status_code == 202, answer.text
                [scoring] = bench.wait([answer.json()["id"]])
                results[workers] = {
                    "trainings": makespan(trainings),
                    "scoring": makespan([scoring]),
                    "partitions": float((scoring.result or {}).get("partitions", 0)),
                }
                print(
                    f"{workers} worker(s): {args.trainings} trainings {results[workers]['trainings']:.1f} s, "
                    f"scoring {args.rows:,} rows in {int(results[workers]['partitions'])} parts "
                    f"{results[workers]['scoring']:.1f} s",
                    flush=True,
                )
        finally:
            bench.close()
    train_ratio = results[2]["trainings"] / results[1]["trainings"]
    score_ratio = results[2]["scoring"] / results[1]["scoring"]
    ms = sorted(1000 * o for o in overhead)
    print()
    print(
        f"trainings, 2 workers / 1 worker: {train_ratio:.2f}  (target <= 0.70; baseline 1 worker "
        f"{results[1]['trainings']:.1f} s)"
    )
    print(
        f"partitioned scoring, 2 / 1:      {score_ratio:.2f}  (target <= 0.70; baseline 1 worker "
        f"{results[1]['scoring']:.1f} s)"
    )
    print(
        f"queue overhead per job: median {statistics.median(ms):.0f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:.0f} ms "
        f"(target median <= 150 ms; {len(ms)} jobs)"
    )


if __name__ == "__main__":
    main()
