"""Vigil side by side with MLflow `models serve` on the same fitted model and the same rows, in one run: a 100-row
JSON request (median latency) and 200,000 x 16 rows in bulk (Vigil: Parquet in and out; MLflow: a CSV body and a
JSON body), each against the model's own `decision_function`.

MLflow is an extra, not a dependency: this runs where `mlflow` is importable, or with `--mlflow-python` naming an
interpreter that has it (and PyOD, to unpickle the model); otherwise it says so and exits 0.

    python benchmarks/bench_mlflow.py [--mlflow-python /path/to/python] [--requests 200] [--bulk-rows 200000]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import pyarrow.parquet as pq

from harness import PARQUET, free_port, median, parquet_bytes, random_frame, running_server, timed, train, upload

COLUMNS = 16
SAVE = """
import sys
import mlflow.pyfunc
import numpy as np


class Scores(mlflow.pyfunc.PythonModel):
    # MLflow's scikit-learn flavour serves predict (labels) or probabilities, not decision_function (the scores):
    # a python model around the same pickled estimator serves the scores, as a user of MLflow would.
    def load_context(self, context):
        import pickle
        self.model = pickle.loads(open(context.artifacts["model"], "rb").read())

    def predict(self, context, model_input, params=None):
        return self.model.decision_function(np.ascontiguousarray(model_input.to_numpy(dtype=np.float64)))


mlflow.pyfunc.save_model(sys.argv[2], python_model=Scores(), artifacts={"model": sys.argv[1]})
"""


def mlflow_python(given: str | None) -> str | None:
    if given:
        return given
    if os.environ.get("VIGIL_BENCH_MLFLOW_PYTHON"):
        return os.environ["VIGIL_BENCH_MLFLOW_PYTHON"]
    return sys.executable if importlib.util.find_spec("mlflow") else None


def serve_mlflow(python: str, model_dir: Path, port: int) -> subprocess.Popen[bytes]:
    command = [python, "-m", "mlflow", "models", "serve", "-m", str(model_dir), "--env-manager", "local",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    # `models serve` starts `uvicorn` by name: the interpreter's own bin directory goes first on PATH.
    env = {**os.environ, "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    # A session of its own: it starts worker processes, stopped together at the end.
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.3)
        if process.poll() is not None:
            break
    stop(process)
    raise SystemExit("mlflow models serve did not become ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlflow-python", default=None)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--bulk-rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    python = mlflow_python(args.mlflow_python)
    if python is None:
        print("mlflow is not installed (an extra): skipped. Install it, or pass --mlflow-python, to compare.")
        return

    small = random_frame(100, COLUMNS, seed=1)
    bulk = random_frame(args.bulk_rows, COLUMNS, seed=2)
    small_vigil = orjson.dumps({"records": small.to_dicts()})
    small_mlflow = orjson.dumps({"dataframe_split": {"columns": small.columns, "data": small.rows()}})
    bulk_parquet = parquet_bytes(bulk)
    bulk_csv = bulk.write_csv().encode()
    bulk_json = orjson.dumps({"dataframe_split": {"columns": bulk.columns, "data": bulk.rows()}})
    # The bulk batch is scored inline: the table body's caps (rows, bytes) raised if it is larger than they allow, as
    # in bench_detect_throughput.py.
    limits = {
        "VIGIL_MAX_INLINE_TABLE_ROWS": str(max(args.bulk_rows, 250_000)),
        "VIGIL_MAX_DETECT_TABLE_BYTES": str(max(2 * len(bulk_parquet), 64 * 1024**2)),
    }
    with running_server(env=limits) as server, tempfile.TemporaryDirectory() as tmp:
        api = server.api()
        detector, job = train(api, upload(api, random_frame(20_000, COLUMNS))["id"])
        estimator = server.stored_model(job["id"]).estimator
        Path(tmp, "model.pkl").write_bytes(pickle.dumps(estimator))
        subprocess.run(
            [python, "-c", SAVE, str(Path(tmp, "model.pkl")), str(Path(tmp, "mlflow-model"))],
            check=True,
            cwd=tmp,  # not the project: MLflow would try to export its lock as the model's requirements
            stderr=subprocess.DEVNULL,
        )
        port = free_port()
        mlflow_server = serve_mlflow(python, Path(tmp, "mlflow-model"), port)
        try:
            mlflow = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
            url = f"/detectors/{detector['id']}/detect"

            def vigil_small() -> httpx.Response:
                return api.post(url, content=small_vigil, headers={"Content-Type": "application/json"})

            def mlflow_small() -> httpx.Response:
                return mlflow.post("/invocations", content=small_mlflow, headers={"Content-Type": "application/json"})

            got = np.array(orjson.loads(mlflow_small().content)["predictions"], dtype=np.float64)
            np.testing.assert_allclose(got, [r["score"] for r in orjson.loads(vigil_small().content)["results"]])
            X_small = np.ascontiguousarray(small.to_numpy())
            latency = {"Vigil": [], "MLflow": [], "direct": []}  # type: dict[str, list[float]]
            for _ in range(4):  # alternating rounds: drift on a shared machine falls on all three alike
                latency["Vigil"] += timed(vigil_small, args.requests // 4)
                latency["MLflow"] += timed(mlflow_small, args.requests // 4)
                latency["direct"] += timed(lambda: estimator.decision_function(X_small), args.requests // 4)

            X_bulk = np.ascontiguousarray(bulk.to_numpy())
            bulk_times = {"Vigil (Parquet)": [], "MLflow (CSV body)": [], "MLflow (JSON body)": [], "direct": []}  # type: dict[str, list[float]]
            for _ in range(args.repeats):
                started = time.perf_counter()
                response = api.post(url, content=bulk_parquet, headers={"Content-Type": PARQUET, "Accept": PARQUET})
                pq.read_table(io.BytesIO(response.content))
                bulk_times["Vigil (Parquet)"].append(time.perf_counter() - started)
                for name, body, media in (("MLflow (CSV body)", bulk_csv, "text/csv"),
                                          ("MLflow (JSON body)", bulk_json, "application/json")):  # fmt: skip
                    started = time.perf_counter()
                    answer = mlflow.post("/invocations", content=body, headers={"Content-Type": media})
                    answer.raise_for_status()
                    orjson.loads(answer.content)
                    bulk_times[name].append(time.perf_counter() - started)
                started = time.perf_counter()
                estimator.decision_function(X_bulk)
                bulk_times["direct"].append(time.perf_counter() - started)
        finally:
            stop(mlflow_server)

    direct_small, direct_bulk = median(latency["direct"]), median(bulk_times["direct"])
    print(f"IForest(n_estimators=100), {COLUMNS} columns; ratio = direct / through the server (1 = no overhead)")
    print(f"{'one 100-row JSON request, median':<36} {'ms':>9}  ratio")
    for name in ("Vigil", "MLflow", "direct"):
        value = median(latency[name])
        print(f"  {name:<34} {value * 1000:9.2f}  {direct_small / value:5.2f}")
    print(f"{f'{args.bulk_rows:,} rows in bulk, median':<36} {'s':>9}  ratio")
    for name, times in bulk_times.items():
        value = median(times)
        print(f"  {name:<34} {value:9.3f}  {direct_bulk / value:5.2f}")


if __name__ == "__main__":
    main()
