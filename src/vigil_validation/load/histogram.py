"""Latencies of one operation in an HDR histogram (microseconds, 3 significant digits, up to an hour): the
percentiles that matter for a service — p50, p90, p99, p99.9 and the maximum — without keeping every sample."""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # an hour: nothing the generator waits for takes longer
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}


class LatencyStats:
    """One operation's outcome counts and latency histogram."""

    def __init__(self) -> None:
        self.histogram = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        self.ok = 0
        self.errors: dict[str, int] = {}

    def record(self, seconds: float, *, error: str | None = None) -> None:
        """A finished request's latency (counted whatever its outcome: a slow error is still slow)."""
        self.histogram.record_value(min(HIGHEST_US, max(LOWEST_US, round(seconds * 1_000_000))))
        if error is None:
            self.ok += 1
        else:
            self.errors[error] = self.errors.get(error, 0) + 1

    def fail_unsent(self, error: str) -> None:
        """A request that never got an answer to time (shed by the generator): an error with no latency."""
        self.errors[error] = self.errors.get(error, 0) + 1

    @property
    def count(self) -> int:
        return self.ok + sum(self.errors.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float:
        return self.error_count / self.count if self.count else 0.0

    def percentile_ms(self, percentile: float) -> float:
        if self.histogram.get_total_count() == 0:
            return 0.0
        return float(self.histogram.get_value_at_percentile(percentile)) / 1000

    @property
    def max_ms(self) -> float:
        return float(self.histogram.get_max_value()) / 1000 if self.histogram.get_total_count() else 0.0

    def merge(self, other: LatencyStats) -> None:
        self.histogram.add(other.histogram)
        self.ok += other.ok
        for kind, n in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + n

    def summary(self, duration_s: float) -> dict[str, Any]:
        """JSON-ready: counts, error rate, throughput (answered per second) and latency percentiles in ms."""
        return {
            "count": self.count,
            "ok": self.ok,
            "errors": dict(sorted(self.errors.items())),
            "error_rate": round(self.error_rate, 5),
            "throughput_per_s": round(self.ok / duration_s, 3) if duration_s > 0 else 0.0,
            **{name: round(self.percentile_ms(p), 3) for name, p in PERCENTILES.items()},
            "max": round(self.max_ms, 3),
            "mean": round(self.histogram.get_mean_value() / 1000, 3) if self.histogram.get_total_count() else 0.0,
        }
