"""The database goes down, silent (blackhole) or slow under a running deployment. During the fault, requests that
need it answer a 503 problem with Retry-After in bounded time (no hanging client), `/health` stays 200 and
`/ready` says 503; after it, the service comes back by itself within the recovery-time objective."""

from __future__ import annotations

import time

import pytest

from vigil_validation.config import DisasterRecoveryConfig
from vigil_validation.faults import Blackhole, Down, Latency, Toxic
from vigil_validation.plugin import Recorder, SeriesRecorder
from vigil_validation.suites.disaster_recovery.conftest import TenantFactory, wait_recovered
from vigil_validation.suites.disaster_recovery.deployment import Deployment
from vigil_validation.suites.disaster_recovery.timeline import Prober, Timeline, standard_probes

pytestmark = [pytest.mark.managed_only, pytest.mark.destructive, pytest.mark.slow]
SETTLE_S = 0.5  # a request sent in the fault's first instant may have been answered before it took hold


def _toxic(fault: str, config: DisasterRecoveryConfig) -> Toxic:
    if fault == "down":
        return Down()
    if fault == "blackhole":
        return Blackhole()
    # Slower per round trip than the server's deadline: every query-bound request must hit it.
    return Latency(ms=config.server_request_timeout_s * 1000 + 1000)


@pytest.mark.parametrize("fault", ["down", "blackhole", "slow"])
def test_database_fault(
    fault: str,
    healthy: Deployment,
    dr_tenants: TenantFactory,
    dr_config: DisasterRecoveryConfig,
    record: Recorder,
    record_series: SeriesRecorder,
) -> None:
    if healthy.database != "postgresql":
        pytest.skip("SQLite is a file inside the API process: there is no database link to cut (PostgreSQL run)")
    tenant = dr_tenants()
    link = healthy.links["database"]
    timeline = Timeline(f"database {fault}")
    probes = standard_probes(healthy.client(timeout=60), tenant.analyst, prefix=f"dr-probe-{fault}")
    with Prober(timeline, probes):
        time.sleep(1.0)  # a baseline before the fault
        # Long enough for a request sent in it to reach the server's deadline while the fault still holds.
        hold_s = max(dr_config.fault_duration_s, 2 * dr_config.server_request_timeout_s + 1)
        with timeline.fault(f"database {fault}"), link.fault(_toxic(fault, dr_config)):
            time.sleep(hold_s)
        window = timeline.windows[0]
        rto = wait_recovered(timeline, window[1], limit_s=dr_config.recovery_time_objective_s + 20)
    record_series(f"database {fault}", "timeline", timeline.series())
    record("faults injected", 1)
    record("requests", len(timeline.samples))

    for op in ("read", "write"):
        during = timeline.during(op, window, settle_s=SETTLE_S)
        assert during, f"no {op} was sent during the fault"
        slow = [s for s in during if s.latency_s > dr_config.answer_within_s]
        assert not slow, f"{op}: {len(slow)} answers took longer than {dr_config.answer_within_s}s (hanging clients)"
        wrong = [s for s in during if s.status not in (200, 201, 503)]
        assert not wrong, f"{op}: during the fault, answers other than 2xx/503: {[s.status for s in wrong]}"
        unavailable = [s for s in during if s.status == 503]
        assert unavailable, f"{op}: the fault had no effect (no 503 during it)"
        assert all(s.retry_after and s.problem for s in unavailable), f"{op}: a 503 without Retry-After/problem"
    health = timeline.during("health", window)
    assert health, "no liveness probe during the fault"
    assert all(s.status == 200 for s in health), "/health must stay 200 while the database is away"
    assert max(s.latency_s for s in health) < 1.0, "/health must stay fast while the database is away"
    ready = timeline.during("ready", window, settle_s=SETTLE_S)
    assert ready, "no readiness probe during the fault"
    assert any(s.status == 503 for s in ready), "/ready must say 503 while the database is away"
    assert all(s.status in (200, 503) and s.latency_s <= dr_config.answer_within_s for s in ready)

    assert rto is not None, "the service did not come back by itself after the fault ended"
    record("RTO", rto, "s")
    assert rto <= dr_config.recovery_time_objective_s, f"recovery took {rto:.1f}s"
