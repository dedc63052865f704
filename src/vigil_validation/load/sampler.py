"""Resident memory and CPU time of the server under load, sampled while it runs: from `/proc/<pid>` when the
suite started the server itself (a managed target), else from the server's own `/metrics` (process collector),
which any deployment of Vigil exposes."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

MIB = 1024 * 1024


@dataclass(frozen=True)
class ProcessSample:
    t: float  # seconds since sampling started
    rss_bytes: int
    cpu_s: float


def read_proc(pid: int) -> tuple[int, float]:
    """(resident bytes, user + system CPU seconds) of process `pid`."""
    statm = Path(f"/proc/{pid}/statm").read_text().split()
    # The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
    stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(statm[1]) * os.sysconf("SC_PAGE_SIZE"), (int(stat[11]) + int(stat[12])) / ticks


def read_metrics(client: httpx.Client) -> tuple[int, float]:
    """The same two figures from Prometheus text at `/metrics`."""
    values: dict[str, float] = {}
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("process_resident_memory_bytes", "process_cpu_seconds_total"):
            values[name] = float(value)
    return int(values["process_resident_memory_bytes"]), values["process_cpu_seconds_total"]


class ProcessSampler:
    """`with ProcessSampler(pid=…) as sampler:` samples every `interval_s` in a thread until the block ends."""

    def __init__(self, *, pid: int | None, base_url: str, interval_s: float = 0.5) -> None:
        self.pid = pid
        self.base_url = base_url
        self.interval_s = interval_s
        self.samples: list[ProcessSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vigil-process-sampler", daemon=True)
        self._client: httpx.Client | None = None

    @property
    def source(self) -> str:
        return f"/proc/{self.pid}" if self.pid is not None else f"{self.base_url}/metrics"

    def sample(self) -> tuple[int, float]:
        if self.pid is not None:
            return read_proc(self.pid)
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, timeout=5)
        return read_metrics(self._client)

    def __enter__(self) -> ProcessSampler:
        self._started = time.monotonic()
        self._take()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._take()
        self.close()

    def close(self) -> None:
        """Closes the connection to `/metrics` (a sampler used for one-off `sample()` calls needs this)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _take(self) -> None:
        try:
            rss, cpu = self.sample()
        except (OSError, httpx.HTTPError, KeyError, ValueError):
            return  # one missed sample is no reason to fail a load; too few are checked by the caller
        self.samples.append(ProcessSample(time.monotonic() - self._started, rss, cpu))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._take()

    @property
    def cpu_seconds(self) -> float:
        return self.samples[-1].cpu_s - self.samples[0].cpu_s if len(self.samples) >= 2 else 0.0

    @property
    def peak_rss_bytes(self) -> int:
        return max((s.rss_bytes for s in self.samples), default=0)


def growth_slope(samples: list[ProcessSample], *, after_s: float) -> float:
    """Resident memory growth after warm-up, in MiB per minute: the least-squares slope of the samples taken after
    `after_s`. A leak shows as a slope that stays positive however long the load runs.

    >>> flat = [ProcessSample(t, 100 * MIB, 0.0) for t in range(60)]
    >>> growing = [ProcessSample(t, 100 * MIB + t * MIB, 0.0) for t in range(60)]
    >>> round(growth_slope(flat, after_s=10), 3), round(growth_slope(growing, after_s=10), 3)
    (0.0, 60.0)
    """
    kept = [s for s in samples if s.t >= after_s]
    if len(kept) < 3:
        raise ValueError(f"too few memory samples after warm-up ({len(kept)}): lengthen the load")
    t = np.array([s.t for s in kept])
    rss = np.array([s.rss_bytes for s in kept], dtype=np.float64) / MIB
    slope_per_s = float(np.polyfit(t, rss, 1)[0])
    return slope_per_s * 60
