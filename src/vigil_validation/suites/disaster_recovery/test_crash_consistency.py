"""SIGKILL of the API process during concurrent idempotent writes (uploads and detector creations from two
tenants), restarted each time as a supervisor would: every acknowledged write exists exactly once with its
content, every unacknowledged one at most once and can be completed by retrying with its key, and nothing of one
tenant shows in the other."""

from __future__ import annotations

import random
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
from vigil_validation.suites.disaster_recovery.timeline import Prober, Timeline, standard_probes
from vigil_validation.suites.disaster_recovery.writes import prepare_subject

pytestmark = [pytest.mark.managed_only, pytest.mark.destructive, pytest.mark.slow]


def test_sigkill_during_idempotent_writes(
    healthy: Deployment,
    dr_tenants: TenantFactory,
    dr_config: DisasterRecoveryConfig,
    record: Recorder,
    record_series: SeriesRecorder,
) -> None:
    tenants = [dr_tenants() for _ in range(2)]
    clients = {t.id: t.analyst for t in tenants}
    subjects = {t.id: prepare_subject(t.analyst) for t in tenants}
    rng = random.Random(dr_config.seed)
    timeline = Timeline("SIGKILL of the API during writes")
    workload = Workload(
        clients=clients, seed=dr_config.seed, writers=dr_config.writers, subjects=subjects, clock=timeline.now
    )
    rtos: list[float] = []
    probes = standard_probes(healthy.client(timeout=30), tenants[0].analyst, prefix="dr-probe-crash")
    probes = {k: v for k, v in probes.items() if k in ("read", "write")}
    with Prober(timeline, probes):
        workload.start()
        try:
            for _ in range(dr_config.crash_kills):
                time.sleep(rng.uniform(0.5, 2.0))
                with timeline.fault("SIGKILL api"):
                    healthy.api.crash()
                    healthy.api.start()  # returns once /ready answers 200: the supervisor's restart is done
                rto = wait_recovered(timeline, timeline.windows[-1][1], limit_s=30)
                if rto is not None:
                    rtos.append(rto)
            time.sleep(1.0)
        finally:
            workload.stop()
    record_series("SIGKILL of the API during writes", "timeline", timeline.series())
    verdict = check(workload.history, clients, subjects=subjects, jobs_end_s=dr_config.jobs_end_s)
    # The writes are over and their jobs ended: what the crashes left in storage, swept with no grace.
    verdict.blobs = healthy.audit_blobs()
    record_verdict(record, verdict, faults=dr_config.crash_kills, rtos=rtos)

    assert_consistent(verdict, scenario="the scenario")
    assert len(rtos) == dr_config.crash_kills, "after a restart the service did not serve reads and writes again"
    assert max(rtos) <= dr_config.recovery_time_objective_s
