"""Latency distribution across load steps, and throughput per operation type: the same mix at each configured
arrival rate, each step's p50/p90/p99/p99.9/max recorded (and plotted), each step's detection p99 within its
bound, and each operation answered at (nearly) the rate it was offered."""

from __future__ import annotations

import pytest

from vigil_validation.config import LoadProfile, ValidationConfig
from vigil_validation.plugin import Recorder, SeriesRecorder
from vigil_validation.suites.performance.conftest import Load, assert_error_rate
from vigil_validation.suites.performance.workload import Workload

MIX = {"detect small": 50, "list datasets": 30, "get detector": 20}


@pytest.mark.slow
def test_latency_and_throughput_across_load_steps(
    load: Load,
    workload: Workload,
    profile: LoadProfile,
    validation_config: ValidationConfig,
    record: Recorder,
    record_series: SeriesRecorder,
) -> None:
    operations = [workload.operation(name, weight) for name, weight in MIX.items()]
    limits = validation_config.performance
    steps: list[dict[str, float]] = []
    throughput: dict[str, list[float]] = {name: [] for name in MIX}
    problems: list[str] = []
    for rate in profile.arrival_rates_per_s:
        result = load(f"step {rate:g}/s", rate, profile.step_duration_s, operations, record_figures=False)
        overall = result.overall.summary(profile.step_duration_s)
        steps.append({"rate": rate, **{k: overall[k] for k in ("p50", "p90", "p99", "p99_9", "max")}})
        record(f"step {rate:g}/s p99", overall["p99"], "ms")
        for name, stats in result.summary()["operations"].items():
            throughput[name].append(stats["throughput_per_s"])
        assert_error_rate(result, limits.error_rate_max)
        detect_p99 = result.operations["detect small"].percentile_ms(99)
        if detect_p99 > limits.detect_p99_ms:
            problems.append(f"at {rate:g}/s detection p99 {detect_p99:.0f} ms > {limits.detect_p99_ms:g} ms")
        answered = result.overall.ok / profile.step_duration_s
        if answered < limits.throughput_min_fraction * rate:
            problems.append(f"at {rate:g}/s only {answered:.1f}/s answered")
    record_series("latency per load step", "latency_steps", {"steps": steps, "limit_ms": limits.detect_p99_ms}, "ms")
    record_series(
        "throughput per operation type",
        "throughput",
        {
            "offered_per_s": list(profile.arrival_rates_per_s),
            "operations": throughput,
        },
        "requests/s",
    )
    assert not problems, "; ".join(problems)
