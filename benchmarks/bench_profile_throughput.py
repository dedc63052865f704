"""Profiling throughput of the analysis engine vs. polars' own `describe()`, on the same data in the same run.

Generates a 2,000,000 x 20 numeric dataset (normal, log-normal, exponential, uniform, integer counts, some
missing values), then times, on the same in-memory frame:

* `polars.DataFrame.describe()` — count, nulls, mean, std, min, quartiles, max;
* the engine's per-column statistics (`profile(..., duplicates=False, correlations=False)`): everything
  `describe()` computes plus 7 quantiles, distinct counts, skewness, kurtosis, zeros, negatives, histograms and
  top values — the "overlapping statistics" comparison (target: >= 0.5 of polars' speed);
* the full profile (also duplicate rows and both correlation matrices), and the full profile of a lazy
  `scan_parquet` against `scan_parquet(...).describe()`.

Peak memory of each, measured in a fresh process (the resident high-water mark, VmHWM, above the process's
level just before the call: polars allocates in Rust, where tracemalloc does not see), is printed relative to
the frame's in-memory size (`estimated_size()`).

    python benchmarks/bench_profile_throughput.py [--rows 2000000] [--columns 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from vigil.analysis import ProfileOptions, profile

STATS_ONLY = ProfileOptions(duplicates=False, correlations=False)


def make_data(rows: int, columns: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    makers: list[Callable[[], np.ndarray]] = [
        lambda: rng.normal(0, 1, rows),
        lambda: rng.lognormal(0, 1, rows),
        lambda: rng.exponential(2, rows),
        lambda: rng.uniform(-5, 5, rows),
        lambda: rng.poisson(3, rows).astype(np.float64),
    ]
    data = {}
    for i in range(columns):
        values = makers[i % len(makers)]()
        if i % 4 == 0:
            values[rng.random(rows) < 0.01] = np.nan
        data[f"c{i:02d}"] = values
    return pl.DataFrame(data).with_columns(pl.col(f"c{i:02d}").fill_nan(None) for i in range(0, columns, 8))


def timed(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def max_rss_bytes() -> int:
    """The process's peak resident memory. VmHWM (Linux) starts afresh at exec; ru_maxrss would carry the
    forking parent's peak into the child, so it is only the fallback."""
    peak = _status_bytes("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_memory(mode: str, path: Path) -> None:
    """Runs one operation in this (fresh) process and prints its peak memory above the level before it."""
    frame = pl.read_parquet(path) if mode.endswith("frame") else None
    baseline = max_rss_bytes()
    if mode == "describe-frame":
        assert frame is not None
        frame.describe()
    elif mode == "stats-frame":
        assert frame is not None
        profile(frame, options=STATS_ONLY)
    elif mode == "profile-frame":
        assert frame is not None
        profile(frame)
    elif mode == "describe-scan":
        pl.scan_parquet(path).describe()
    elif mode == "profile-scan":
        profile(pl.scan_parquet(path))
    print(json.dumps({"extra_bytes": max_rss_bytes() - baseline}))


def memory_of(mode: str, path: Path) -> int:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", mode, "--path", str(path)], check=True, capture_output=True, text=True
    )
    return int(json.loads(out.stdout.strip().splitlines()[-1])["extra_bytes"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure_memory(args.measure, args.path)
        return

    frame = make_data(args.rows, args.columns)
    size = frame.estimated_size()
    print(f"dataset: {args.rows:,} rows x {args.columns} numeric columns, {size / 1e6:.0f} MB in memory")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.parquet"
        frame.write_parquet(path)
        frame.describe()  # warm-up: thread pools, allocator
        profile(frame.head(1000))
        t_describe = timed(frame.describe, args.repeats)
        t_stats = timed(lambda: profile(frame, options=STATS_ONLY), args.repeats)
        t_full = timed(lambda: profile(frame), args.repeats)
        t_scan_describe = timed(lambda: pl.scan_parquet(path).describe(), args.repeats)
        t_scan_full = timed(lambda: profile(pl.scan_parquet(path)), args.repeats)
        memory = {mode: memory_of(mode, path) for mode in
                  ("describe-frame", "stats-frame", "profile-frame", "describe-scan", "profile-scan")}  # fmt: skip

    def row(label: str, seconds: float, baseline: float, mode: str) -> None:
        rate = args.rows / seconds / 1e6
        print(
            f"  {label:<44} {seconds:7.3f} s  {rate:6.2f} M rows/s  speed vs polars {baseline / seconds:5.2f}"
            f"  peak extra memory {memory[mode] / size:5.2f}x dataset"
        )

    print(f"median of {args.repeats} runs:")
    row("polars DataFrame.describe()", t_describe, t_describe, "describe-frame")
    row("engine: per-column statistics (overlapping)", t_stats, t_describe, "stats-frame")
    row("engine: full profile (+duplicates, correlations)", t_full, t_describe, "profile-frame")
    row("polars scan_parquet().describe()", t_scan_describe, t_scan_describe, "describe-scan")
    row("engine: full profile of scan_parquet()", t_scan_full, t_scan_describe, "profile-scan")
    ratio = t_describe / t_stats
    print(f"RATIO engine/polars throughput on the overlapping statistics: {ratio:.2f} (target >= 0.5)")
    print(f"RATIO engine full profile/polars describe throughput: {t_describe / t_full:.2f}")
    print(f"PEAK MEMORY full profile of a Parquet scan: {memory['profile-scan'] / size:.2f}x the dataset's size")


if __name__ == "__main__":
    main()
