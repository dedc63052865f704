"""Concurrent users: a mixed workload of many virtual users — browsing lists, reading a report, uploading, detecting
small batches and bulk Parquet, asking for trainings — at a fixed arrival rate. Every class of operation keeps its
p99 within the configured bound, and the error rate stays below the configured share."""

from __future__ import annotations

import pytest

from vigil_validation.config import LoadProfile, ValidationConfig
from vigil_validation.load import VirtualUser
from vigil_validation.plugin import Recorder, SeriesRecorder
from vigil_validation.suites.performance.conftest import Load, assert_error_rate
from vigil_validation.suites.performance.workload import CLASSES, Workload, by_class

MIX = {
    "list datasets": 14,
    "list detectors": 10,
    "get detector": 10,
    "list jobs": 6,
    "read report": 6,
    "me": 6,
    "detect small": 30,
    "detect bulk": 6,
    "upload": 6,
    "train": 1,
}


@pytest.mark.slow
def test_mixed_workload_of_many_users(
    load: Load,
    workload: Workload,
    users: list[VirtualUser],
    profile: LoadProfile,
    validation_config: ValidationConfig,
    record: Recorder,
    record_series: SeriesRecorder,
) -> None:
    assert len(users) >= 50 or profile.virtual_users < 50, "the seed asks for at least 50 virtual users"
    operations = [workload.operation(name, weight) for name, weight in MIX.items()]
    result = load("mixed", profile.mixed_rate_per_s, profile.mixed_duration_s, operations)
    summary = result.summary()["operations"]
    record("virtual users", len(users), "")
    record_series(
        "throughput per operation (mixed workload)",
        "throughput",
        {
            "offered_per_s": [profile.mixed_rate_per_s],
            "operations": {name: [stats["throughput_per_s"]] for name, stats in summary.items()},
        },
        unit="requests/s",
    )
    for name, stats in summary.items():
        record(f"mixed {name} p99", stats["p99"], "ms")
    limits = validation_config.performance
    assert_error_rate(result, limits.error_rate_max)
    slow = [
        f"{name}: p99 {p99:.0f} ms > {getattr(limits, CLASSES[kind]):g} ms"
        for kind, ops in by_class(workload, summary).items()
        for name, p99 in ops
        if p99 > getattr(limits, CLASSES[kind])
    ]
    assert not slow, "; ".join(slow)
