"""A scenario's timeline: fault windows, and a prober that keeps asking the deployment the same few questions
(liveness, readiness, a read, an idempotent write) so that behaviour *during* a fault and recovery *after* it are
measured, not guessed. The timeline is what the HTML report draws (`record_series(kind="timeline")`)."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from vigil.client import VigilClient, VigilConnectionError

PROBE_INTERVAL_S = 0.25


@dataclass(frozen=True)
class Sample:
    t_s: float
    op: str
    status: int  # 0: no answer (refused, reset, timed out)
    latency_s: float
    retry_after: str | None = None
    problem: bool = False


@dataclass
class Timeline:
    name: str
    t0: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    windows: list[tuple[float, float, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def event(self, label: str) -> float:
        t = self.now()
        with self._lock:
            self.events.append((t, label))
        return t

    def add(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)

    @contextlib.contextmanager
    def fault(self, label: str) -> Iterator[None]:
        start = self.event(f"{label}")
        try:
            yield
        finally:
            end = self.event(f"{label} healed")
            self.windows.append((start, end, label))

    def during(self, op: str, window: tuple[float, float, str], *, settle_s: float = 0.0) -> list[Sample]:
        """The samples of `op` *sent* inside the fault window (after `settle_s`, the fault's time to take hold),
        whenever they were answered: how long a request sent during a fault waits is what a client feels."""
        start, end, _ = window
        return [s for s in self.samples if s.op == op and start + settle_s <= s.t_s - s.latency_s <= end]

    def recovery_s(self, after: float, ops: tuple[str, ...] = ("read", "write")) -> float | None:
        """Seconds from `after` (a fault's end) until every op in `ops` has answered 2xx at least once."""
        firsts = []
        for op in ops:
            ok = [s.t_s for s in self.samples if s.op == op and s.t_s - s.latency_s >= after and 200 <= s.status < 300]
            if not ok:
                return None
            firsts.append(min(ok))
        return max(firsts) - after

    def series(self) -> dict[str, Any]:
        """`timeline` data for the HTML report: the latency of each op, and the fault windows as events."""
        t_s = sorted({round(s.t_s, 2) for s in self.samples})
        index = {t: i for i, t in enumerate(t_s)}
        values: dict[str, list[float]] = {}
        for sample in self.samples:
            name = f"{sample.op} latency ms" if 200 <= sample.status < 300 else f"{sample.op} failed"
            column = values.setdefault(name, [0.0] * len(t_s))
            column[index[round(sample.t_s, 2)]] = round(sample.latency_s * 1000, 1)
        events = [{"t_s": round(t, 2), "label": label} for t, label in self.events]
        return {"t_s": t_s, "values": values, "events": events}


ProbeFn = Callable[[], httpx.Response]


class Prober:
    """A daemon thread asking each probe in turn every `interval_s` until stopped; records every answer."""

    def __init__(self, timeline: Timeline, probes: dict[str, ProbeFn], *, interval_s: float = PROBE_INTERVAL_S):
        self.timeline = timeline
        self.probes = probes
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(name, fn), daemon=True) for name, fn in probes.items()
        ]

    def _run(self, name: str, fn: ProbeFn) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                response = fn()
                status = response.status_code
                retry_after = response.headers.get("retry-after")
                problem = response.headers.get("content-type", "").startswith("application/problem+json")
            except VigilConnectionError:
                status, retry_after, problem = 0, None, False
            end = time.monotonic()
            self.timeline.add(Sample(end - self.timeline.t0, name, status, end - start, retry_after, problem))
            self._stop.wait(max(0.0, self.interval_s - (end - start)))

    def __enter__(self) -> Prober:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def standard_probes(anonymous: VigilClient, user: VigilClient, *, prefix: str) -> dict[str, ProbeFn]:
    """Liveness, readiness, a tenant read and an idempotent tenant write (a detector, fresh key each time)."""

    def write() -> httpx.Response:
        key = uuid.uuid4().hex
        body = {"name": f"{prefix}-{key[:12]}", "algorithm": "iforest"}
        return user.send("POST", "/api/v1/detectors", json=body, headers={"Idempotency-Key": key})

    return {
        "health": lambda: anonymous.send("GET", "/health", authenticated=False),
        "ready": lambda: anonymous.send("GET", "/ready", authenticated=False),
        "read": lambda: user.send("GET", "/api/v1/detectors", params={"limit": 5}),
        "write": write,
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return float(statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q * 100) - 1))])
