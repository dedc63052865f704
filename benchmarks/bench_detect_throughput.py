"""Scoring throughput through the API vs. the same fitted model called directly, measured in the same run.

Starts a real `vigil serve` on a free port with a fresh data directory, trains an Isolation Forest through the API,
then times `POST /detectors/{id}/detect` with a Parquet body of 200,000 rows x 16 columns (Parquet response) against
`decision_function` of the very model the server stored (loaded and verified from its data directory).

    python benchmarks/bench_detect_throughput.py [--rows 200000] [--columns 16] [--repeats 5]

Prints the ratio api_throughput / direct_throughput (target: >= 0.9), by wall time; and the same by CPU time (the
server's and this client's against the direct call's), which a shared, busy machine disturbs far less.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import pyarrow.parquet as pq

from harness import PARQUET, parquet_bytes, random_frame, running_server, server_cpu_seconds, train, upload, verdict

TARGET = 0.9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--columns", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    train_frame = random_frame(20_000, args.columns, seed=0)
    score = random_frame(args.rows, args.columns, seed=1)
    body = parquet_bytes(score)
    X = score.to_numpy()

    # A Parquet body is capped (VIGIL_MAX_INLINE_TABLE_ROWS, 250,000 by default, and VIGIL_MAX_DETECT_TABLE_BYTES,
    # 64 MiB): the default batch fits the defaults; a larger --rows raises them, as an operator serving such clients
    # would.
    limits = {
        "VIGIL_MAX_INLINE_TABLE_ROWS": str(max(args.rows, 250_000)),
        "VIGIL_MAX_DETECT_TABLE_BYTES": str(max(2 * len(body), 64 * 1024**2)),
    }
    with running_server(env=limits) as server:
        api = server.api()
        dataset = upload(api, train_frame)
        detector, job = train(api, dataset["id"])
        estimator = server.stored_model(job["id"]).estimator
        headers = {"Content-Type": PARQUET, "Accept": PARQUET}
        url = f"/detectors/{detector['id']}/detect"
        api.post(url, content=body, headers=headers).raise_for_status()  # warm-up: loads and caches the model
        api_times, direct_times, api_scores, direct_scores = [], [], None, None
        api_cpu, direct_cpu = [], []
        for _ in range(args.repeats):  # alternating, so drift on a shared machine falls on both alike
            server_cpu, client_cpu = server_cpu_seconds(server.url), time.process_time()
            started = time.perf_counter()
            response = api.post(url, content=body, headers=headers)
            api_scores = pq.read_table(io.BytesIO(response.content)).column("score").to_numpy()
            api_times.append(time.perf_counter() - started)
            api_cpu.append(time.process_time() - client_cpu + server_cpu_seconds(server.url) - server_cpu)
            client_cpu = time.process_time()
            started = time.perf_counter()
            direct_scores = estimator.decision_function(X)
            direct_times.append(time.perf_counter() - started)
            direct_cpu.append(time.process_time() - client_cpu)

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
    print(f"throughput ratio api/direct = {ratio:.2f}  (target >= {TARGET}: {verdict(ratio, TARGET)})")
    api_c, direct_c = statistics.median(api_cpu), statistics.median(direct_cpu)
    cpu_ratio = direct_c / api_c
    print(f"CPU seconds per batch: direct {direct_c:.3f}, API {api_c:.3f} (server and client); ratio {cpu_ratio:.2f}")


if __name__ == "__main__":
    main()
