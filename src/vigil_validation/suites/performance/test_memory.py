"""Memory under sustained load: the server's resident memory, sampled while a steady load runs, must stop growing
after warm-up — a slope above the configured MiB per minute is a leak — and stay below the configured ceiling.
Sampled from /proc of a managed server, else from the target's /metrics."""

from __future__ import annotations

import pytest

from vigil_validation.config import LoadProfile, ValidationConfig
from vigil_validation.load import ProcessSampler, growth_slope
from vigil_validation.load.sampler import MIB
from vigil_validation.plugin import Recorder, SeriesRecorder
from vigil_validation.suites.performance.conftest import Load, assert_error_rate
from vigil_validation.suites.performance.workload import Workload
from vigil_validation.targets import Target

MIX = {"detect small": 50, "list datasets": 20, "get detector": 15, "detect bulk": 5, "me": 10}


@pytest.mark.slow
def test_memory_stops_growing_under_sustained_load(
    load: Load,
    workload: Workload,
    target: Target,
    profile: LoadProfile,
    validation_config: ValidationConfig,
    record: Recorder,
    record_series: SeriesRecorder,
) -> None:
    operations = [workload.operation(name, weight) for name, weight in MIX.items()]
    interval = validation_config.load_testing.sample_interval_s
    with ProcessSampler(pid=target.server_pid, base_url=target.url, interval_s=interval) as sampler:
        result = load("soak", profile.soak_rate_per_s, profile.soak_duration_s, operations)
    samples = sampler.samples
    assert len(samples) >= 10, f"only {len(samples)} memory samples from {sampler.source}"
    slope = growth_slope(samples, after_s=profile.soak_warmup_s)
    peak_mib = sampler.peak_rss_bytes / MIB
    limits = validation_config.performance
    record("memory growth after warm-up", slope, "MiB/min")
    record("peak resident memory", peak_mib, "MiB")
    record("server CPU per request", 1000 * sampler.cpu_seconds / max(1, result.overall.count), "ms")
    record_series(
        f"resident memory ({sampler.source})",
        "memory",
        {
            "t_s": [round(s.t, 3) for s in samples],
            "rss_mib": [round(s.rss_bytes / MIB, 3) for s in samples],
            "warmup_s": profile.soak_warmup_s,
            "slope_mib_per_min": round(slope, 4),
        },
        unit="MiB",
    )
    assert_error_rate(result, limits.error_rate_max)
    assert peak_mib <= limits.memory_max_mib, f"resident memory reached {peak_mib:.0f} MiB"
    assert slope <= limits.memory_growth_max_mib_per_min, (
        f"resident memory still grows {slope:.2f} MiB/min after {profile.soak_warmup_s:g}s of warm-up "
        f"(limit {limits.memory_growth_max_mib_per_min:g}): a leak?"
    )
