"""How long the engines' work keeps the interpreter lock: the longest stretch in which no other thread could run.

In the embedded server jobs run in threads of the API process, so a library call that holds the lock for seconds
answers no request meanwhile, and a thread holding SQLite's write lock cannot finish (docs/architecture.md,
"SQLite's one writer"). Each piece of work runs in its own process (fresh, capped by `--timeout`) while a daemon
thread sleeps 1 ms in a loop and records the longest gap between its wake-ups. A gap of seconds is the lock held;
load alone gives ~0.1–0.5 s on a busy machine, so a matrix product in numpy (which releases the lock) runs first
as the baseline of the same session. Work that runs out of time prints the longest gap it reached.

    .venv/bin/python benchmarks/bench_gil_hold.py --rows 50000 --work fit:iforest explain:knn report:profile
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time

import numpy as np
import polars as pl

DEFAULT_WORK = [
    "report:profile",
    "report:quality",
    "report:analysis",
    "fit:auto",
    "fit:iforest",
    "fit:ecod",
    "fit:copod",
    "fit:knn",
    "fit:kde",
    "score:auto",
    "score:knn",
    "score:lof",
    "explain:iforest",
    "explain:ecod",
    "explain:knn",
    "explain:auto",
]
EXPLAIN_ROWS = 1_000  # a detection job's explanation chunk (detectors/tasks.py)


class Gaps:
    """The longest gap between a 1 ms ticker's wake-ups since the last `reset`."""

    def __init__(self) -> None:
        self.longest = 0.0
        threading.Thread(target=self._tick, daemon=True).start()

    def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            time.sleep(0.001)
            now = time.perf_counter()
            if now - last > self.longest:
                self.longest = now - last
                if self.longest > 0.5:  # seen even if the run is cut by its timeout
                    print(f"#gap {self.longest:.3f}", flush=True)
            last = now

    def reset(self) -> None:
        self.longest = 0.0
        print("#reset", flush=True)


def run_one(work: str, rows: int, columns: int, *, warm: bool) -> None:
    kind, name = work.split(":", 1)
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(rng.normal(size=(rows, columns)), schema=[f"f{i}" for i in range(columns)])
    from vigil import analysis, ml  # noqa: PLC0415 - imports stay out of the measured time

    if warm:  # as the server does after start (app.import_libraries): imports and numba compiles out of the way
        ml.warm_up()
        analysis.warm_up()
    gaps = Gaps()
    time.sleep(0.05)
    gaps.reset()
    start = time.perf_counter()
    if kind == "numpy":
        square = rng.normal(size=(2_000, 2_000))
        for _ in range(10):
            square @ square
    elif kind == "report":
        lazy = frame.with_columns(label=(pl.col("f0") > 2).cast(pl.Int8)).lazy()
        if name == "profile":
            analysis.profile(lazy, options=analysis.ProfileOptions(label="label"))
        elif name == "quality":
            analysis.assess(lazy, options=analysis.QualityOptions(label="label"))
        else:
            analysis.analyse(lazy, options=analysis.AnalysisOptions(target="label"))
    else:
        model = ml.fit_detector(
            frame,
            algorithm=name,
            parameters={},
            contamination=0.1,
            features=list(frame.columns),
            preprocessing=ml.Preprocessing(),
        )
        if kind != "fit":  # only the scoring or explaining is measured
            gaps.reset()
            start = time.perf_counter()
            if kind == "score":
                model.score(frame)
            else:
                ml.explain(model, model.preprocessor.transform(frame.head(EXPLAIN_ROWS)))
    print(f"#done {time.perf_counter() - start:.2f} {gaps.longest:.3f}", flush=True)


def measure(work: str, rows: int, columns: int, timeout: float, *, warm: bool) -> str:
    command = [sys.executable, __file__, "--one", work, "--rows", str(rows), "--columns", str(columns)]
    command += [] if warm else ["--cold"]
    started = time.perf_counter()
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False).stdout
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or b""
        out = (raw.decode() if isinstance(raw, bytes) else raw) + f"#timeout {time.perf_counter() - started:.0f}"
    lines = out.splitlines()
    resets = [i for i, line in enumerate(lines) if line == "#reset"]
    lines = lines[resets[-1] + 1 :] if resets else lines  # gaps of the measured phase only
    longest = max([float(line.split()[1]) for line in lines if line.startswith("#gap")], default=0.0)
    done = [line.split() for line in lines if line.startswith("#done")]
    if done:
        return f"{work:24s} {rows:>8d}x{columns} {float(done[0][1]):>8.2f} s  {float(done[0][2]) * 1000:>7.0f} ms"
    if any(line.startswith("#timeout") for line in lines):
        return f"{work:24s} {rows:>8d}x{columns} {'>' + str(int(timeout)):>8s} s  {longest * 1000:>7.0f} ms (cut)"
    return f"{work:24s} {rows:>8d}x{columns}   failed: {(lines or ['no output'])[-1][:60]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--columns", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--work", nargs="*", default=DEFAULT_WORK, help="kind:name (report, fit, score, explain)")
    parser.add_argument("--cold", action="store_true", help="skip the libraries' warm-up the server does at start")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one, args.rows, args.columns, warm=not args.cold)
        return
    print(f"{'work':24s} {'size':>10s} {'time':>10s}  {'longest gap':>10s}")
    for work in ["numpy:baseline", *args.work]:
        print(measure(work, args.rows, args.columns, args.timeout, warm=not args.cold), flush=True)


if __name__ == "__main__":
    main()
