"""The consistency checker under a seeded random fault schedule (`--faults N --seed S`; CI runs the configured
few with a fixed seed): writers keep sending idempotent uploads and detector creations for two tenants while the
schedule kills, freezes and cuts things; afterwards every acknowledged write exists exactly once with its content,
every unacknowledged one at most once and completable by a retry with its key, no tenant sees another's."""

from __future__ import annotations

import time

import pytest

from vigil_validation.config import DisasterRecoveryConfig
from vigil_validation.plugin import Recorder, SeriesRecorder
from vigil_validation.suites.disaster_recovery.checker import Workload, check
from vigil_validation.suites.disaster_recovery.conftest import (
    TenantFactory,
    assert_consistent,
    record_verdict,
    wait_recovered,
)
from vigil_validation.suites.disaster_recovery.deployment import Deployment
from vigil_validation.suites.disaster_recovery.schedule import inject, schedule
from vigil_validation.suites.disaster_recovery.timeline import Prober, Timeline, standard_probes
from vigil_validation.suites.disaster_recovery.writes import prepare_subject

pytestmark = [pytest.mark.managed_only, pytest.mark.destructive, pytest.mark.slow]


def test_nothing_acknowledged_is_lost_under_a_seeded_fault_schedule(
    healthy: Deployment,
    dr_tenants: TenantFactory,
    dr_config: DisasterRecoveryConfig,
    record: Recorder,
    record_series: SeriesRecorder,
) -> None:
    tenants = [dr_tenants() for _ in range(2)]
    clients = {t.id: t.analyst for t in tenants}
    subjects = {t.id: prepare_subject(t.analyst) for t in tenants}
    plan = schedule(healthy, faults=dr_config.faults, seed=dr_config.seed, duration_s=dr_config.fault_duration_s)
    timeline = Timeline(f"{len(plan)} faults, seed {dr_config.seed}")
    workload = Workload(
        clients=clients, seed=dr_config.seed, writers=dr_config.writers, subjects=subjects, clock=timeline.now
    )
    probes = standard_probes(healthy.client(timeout=30), tenants[0].analyst, prefix="dr-probe-schedule")
    probes = {k: v for k, v in probes.items() if k in ("read", "write")}
    rtos: list[float] = []
    unrecovered: list[str] = []
    slow_ms = dr_config.server_request_timeout_s * 1000 + 1000
    with Prober(timeline, probes):
        workload.start()
        try:
            for fault in plan:
                time.sleep(fault.gap_s)
                with timeline.fault(fault.name):
                    inject(healthy, fault, slow_ms=slow_ms)
                rto = wait_recovered(
                    timeline, timeline.windows[-1][1], limit_s=dr_config.recovery_time_objective_s + 20
                )
                if rto is None:
                    unrecovered.append(fault.name)
                else:
                    rtos.append(rto)
            time.sleep(1.0)
        finally:
            workload.stop()
    record_series(timeline.name, "timeline", timeline.series())
    verdict = check(workload.history, clients, subjects=subjects, jobs_end_s=dr_config.jobs_end_s)
    # The writes are over and their jobs ended: what the crashes left in storage, swept with no grace.
    verdict.blobs = healthy.audit_blobs()
    record_verdict(record, verdict, faults=len(plan), rtos=rtos)

    assert_consistent(verdict, scenario="the schedule")
    assert not unrecovered, f"no recovery after: {unrecovered}"
    late = [r for r in rtos if r > dr_config.recovery_time_objective_s]
    assert not late, f"recoveries slower than the objective: {late}"
