"""The server's peak resident memory over a block of requests, against its level when the block began — read from
the process itself: for a managed server its kernel high-water mark (`VmHWM`, reset at the start of the block
through `/proc/<pid>/clear_refs`, so a spike between two samples is not missed), plus frequent samples of its
resident set; for a remote one, samples of `/metrics` (`process_resident_memory_bytes`)."""

from __future__ import annotations

from pathlib import Path

from vigil_validation.load.sampler import MIB, ProcessSampler
from vigil_validation.targets import Target

_RESET_PEAK = "5"  # clear_refs: reset the process's peak resident set size to its current one


class PeakMemory:
    """`with PeakMemory(target) as watch:` … then `watch.growth_mib`: the peak over the block minus the start."""

    def __init__(self, target: Target, *, interval_s: float = 0.05) -> None:
        self.pid = target.server_pid if target.kind == "managed" else None
        self.sampler = ProcessSampler(pid=self.pid, base_url=target.url, interval_s=interval_s)
        self.baseline_bytes = 0
        self.peak_bytes = 0
        self.high_water_mark = False

    @property
    def source(self) -> str:
        return f"VmHWM of /proc/{self.pid}" if self.high_water_mark else self.sampler.source

    @property
    def growth_mib(self) -> float:
        return (self.peak_bytes - self.baseline_bytes) / MIB

    def __enter__(self) -> PeakMemory:
        self.high_water_mark = self._reset_high_water_mark()
        self.baseline_bytes = self.sampler.sample()[0]
        self.sampler.__enter__()
        return self

    def __exit__(self, *_: object) -> None:
        self.sampler.__exit__()
        self.peak_bytes = max(self.sampler.peak_rss_bytes, self.baseline_bytes)
        if self.high_water_mark and self.pid is not None:
            self.peak_bytes = max(self.peak_bytes, _status_kib(self.pid, "VmHWM") * 1024)

    def _reset_high_water_mark(self) -> bool:
        if self.pid is None:
            return False
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text(_RESET_PEAK)
            return _status_kib(self.pid, "VmHWM") > 0
        except (OSError, ValueError):
            return False  # not permitted here (another user's process, an old kernel): the samples alone count


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise ValueError(f"no {field} in /proc/{pid}/status")
