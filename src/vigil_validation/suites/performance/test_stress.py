"""Stress: raise the arrival rate step by step until the p99 target or the error rate breaks, and report the knee —
the highest rate that held — with the server's CPU time per request there. The knee must reach the configured
floor; CPU per request at the knee must stay within its bound."""

from __future__ import annotations

import contextlib
import time

import pytest

from vigil_validation.config import LoadProfile, ValidationConfig
from vigil_validation.load import Operation, ProcessSampler
from vigil_validation.plugin import Recorder, SeriesRecorder
from vigil_validation.suites.performance.conftest import Load
from vigil_validation.suites.performance.workload import Workload
from vigil_validation.targets import Target

MIX = {"detect small": 50, "list datasets": 30, "get detector": 20}
DRAIN_S = 1.0


def ramp(profile: LoadProfile) -> list[float]:
    rates, rate = [], profile.stress_start_per_s
    while rate <= profile.stress_max_per_s:
        rates.append(round(rate, 1))
        rate *= profile.stress_growth
    return rates


def _ramp_until_it_breaks(
    load: Load, cpu: ProcessSampler, operations: list[Operation], profile: LoadProfile, config: ValidationConfig
) -> list[dict[str, float | bool]]:
    limits = config.performance
    steps: list[dict[str, float | bool]] = []
    for rate in ramp(profile):
        cpu_before = cpu.sample()[1]
        result = load(f"stress {rate:g}/s", rate, profile.stress_step_s, operations, record_figures=False)
        cpu_used = cpu.sample()[1] - cpu_before
        overall = result.overall
        held = overall.percentile_ms(99) <= limits.stress_p99_ms and overall.error_rate <= limits.stress_error_rate_max
        steps.append(
            {
                "rate": rate,
                "p99_ms": round(overall.percentile_ms(99), 3),
                "error_rate": round(overall.error_rate, 5),
                "held": held,
                "cpu_ms_per_request": round(1000 * cpu_used / max(1, overall.ok), 3),
            }
        )
        if not held:
            break
        time.sleep(DRAIN_S)  # let the last requests of a step finish before the next one starts
    return steps


@pytest.mark.slow
def test_stress_to_the_knee(
    load: Load,
    workload: Workload,
    target: Target,
    profile: LoadProfile,
    validation_config: ValidationConfig,
    record: Recorder,
    record_series: SeriesRecorder,
) -> None:
    limits = validation_config.performance
    operations = [workload.operation(name, weight) for name, weight in MIX.items()]
    cpu = ProcessSampler(pid=target.server_pid, base_url=target.url)
    with contextlib.closing(cpu):
        steps = _ramp_until_it_breaks(load, cpu, operations, profile, validation_config)
    holding = [s for s in steps if s["held"]]
    knee = holding[-1] if holding else None
    record_series(
        "stress ramp",
        "knee",
        {
            "rates": [s["rate"] for s in steps],
            "p99_ms": [s["p99_ms"] for s in steps],
            "error_rate": [s["error_rate"] for s in steps],
            "held": [s["held"] for s in steps],
            "knee_per_s": knee["rate"] if knee else None,
            "p99_limit_ms": limits.stress_p99_ms,
        },
        "requests/s",
    )
    assert knee is not None, f"not even {steps[0]['rate']}/s held: {steps[0]}"
    record("knee", float(knee["rate"]), "req/s")
    record("broke at", float(steps[-1]["rate"]) if not steps[-1]["held"] else 0.0, "req/s")
    record("CPU per request at the knee", float(knee["cpu_ms_per_request"]), "ms")
    assert float(knee["rate"]) >= limits.knee_min_per_s, (
        f"the knee {knee['rate']}/s is below {limits.knee_min_per_s:g}/s"
    )
    assert float(knee["cpu_ms_per_request"]) <= limits.cpu_ms_per_request_max, knee
