"""A training job end to end through the API (request, queue, fit, artifact, model version, job succeeded, as seen
by a client polling the job) vs. the same fit called directly — PyOD's `IForest(...).fit(X)` on the same rows —
measured in the same run. Also the first training after start, which pays for importing the detector libraries
unless the server warmed them in the background.

    python benchmarks/bench_train.py [--rows 50000] [--columns 16] [--repeats 3]

Target: API time <= 1.1 x direct + 0.3 s.
"""

from __future__ import annotations

import argparse
import time

from pyod.models.iforest import IForest

from harness import median, random_frame, running_server, train, upload, verdict

CONTAMINATION = 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--columns", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    frame = random_frame(args.rows, args.columns)
    X = frame.to_numpy()
    with running_server() as server:
        api = server.api()
        dataset = upload(api, frame)
        parameters = {"n_estimators": 100}
        started = time.perf_counter()
        train(api, dataset["id"], parameters=parameters)
        first = time.perf_counter() - started
        api_times, direct_times = [], []
        for _ in range(args.repeats):  # alternating, so drift on a shared machine falls on both alike
            started = time.perf_counter()
            train(api, dataset["id"], parameters=parameters)
            api_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            IForest(n_estimators=100, contamination=CONTAMINATION).fit(X)
            direct_times.append(time.perf_counter() - started)
    api_s, direct_s = median(api_times), median(direct_times)
    bound = 1.1 * direct_s + 0.3
    print(f"rows={args.rows} columns={args.columns} model=IForest(n_estimators=100) repeats={args.repeats}")
    print(f"direct IForest.fit:                          {direct_s:.3f} s")
    print(f"through the API (train job, polled to done): {api_s:.3f} s  (first after start: {first:.3f} s)")
    print(f"ratio api/direct = {api_s / direct_s:.2f}; bound 1.1 x direct + 0.3 s = {bound:.3f} s: "
          f"{verdict(api_s, bound, higher_is_better=False)}")  # fmt: skip


if __name__ == "__main__":
    main()
