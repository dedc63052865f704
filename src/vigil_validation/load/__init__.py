"""The performance suite's load generator: open model (a fixed arrival rate, so no coordinated omission), asyncio
and httpx, every latency in an HDR histogram, bounded in count and time, loopback-only unless a target was named;
and a sampler of the server process's memory and CPU."""

from vigil_validation.load.generator import (
    LoadError,
    LoadPlan,
    LoadResult,
    Operation,
    VirtualUser,
    check_target,
    run_load,
)
from vigil_validation.load.histogram import LatencyStats
from vigil_validation.load.sampler import ProcessSample, ProcessSampler, growth_slope

__all__ = [
    "LatencyStats",
    "LoadError",
    "LoadPlan",
    "LoadResult",
    "Operation",
    "ProcessSample",
    "ProcessSampler",
    "VirtualUser",
    "check_target",
    "growth_slope",
    "run_load",
]
