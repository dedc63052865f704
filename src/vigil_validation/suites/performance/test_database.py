"""The database under concurrent reads and writes: creates, renames and reads interleaved at a fixed rate. Writes
and reads keep their p99 bounds, nothing fails, and every acknowledged create is there afterwards (no write is
lost, none is doubled)."""

from __future__ import annotations

import pytest

from vigil_validation.config import LoadProfile, ValidationConfig
from vigil_validation.plugin import Recorder
from vigil_validation.suites.performance.conftest import Load, assert_error_rate
from vigil_validation.suites.performance.workload import CLASSES, Workload, by_class

MIX = {"create detector": 25, "rename dataset": 20, "list detectors": 25, "get dataset": 15, "list datasets": 15}


@pytest.mark.slow
def test_concurrent_reads_and_writes(
    load: Load, workload: Workload, profile: LoadProfile, validation_config: ValidationConfig, record: Recorder
) -> None:
    operations = [workload.operation(name, weight) for name, weight in MIX.items()]
    before = len(workload.created)
    result = load("database", profile.database_rate_per_s, profile.database_duration_s, operations)
    limits = validation_config.performance
    assert_error_rate(result, limits.error_rate_max)
    summary = result.summary()["operations"]
    for kind, ops in by_class(workload, summary).items():
        for name, p99 in ops:
            record(f"database {name} p99", p99, "ms")
            assert p99 <= getattr(limits, CLASSES[kind]), f"{name}: p99 {p99:.0f} ms"
    acknowledged = set(workload.created[before:])
    assert len(acknowledged) == result.operations["create detector"].ok
    stored = {
        d["id"]
        for d in workload.admin.detectors.iter_all(page_size=500)
        if str(d["name"]).startswith(f"load-{workload.run_id}-")
    }
    record("acknowledged creates", len(acknowledged), "")
    missing, unexpected = acknowledged - stored, stored - set(workload.created)
    assert not missing, f"{len(missing)} acknowledged detector(s) are gone: {sorted(missing)[:5]}"
    assert not unexpected, f"{len(unexpected)} detector(s) nobody was told about: {sorted(unexpected)[:5]}"
