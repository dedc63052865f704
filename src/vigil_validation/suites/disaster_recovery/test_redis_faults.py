"""Redis down under a running deployment: rate limits fall back to local counts (documented: they fail open to
per-process limits, never closed), so reads, writes and logins keep working; the service never notices more than
a moment's extra latency, and `/ready` (which does not depend on Redis) stays 200."""

from __future__ import annotations

import time

import pytest

from vigil_validation.config import DisasterRecoveryConfig
from vigil_validation.faults import Down
from vigil_validation.plugin import Recorder, SeriesRecorder
from vigil_validation.suites.disaster_recovery.conftest import TenantFactory
from vigil_validation.suites.disaster_recovery.deployment import Deployment
from vigil_validation.suites.disaster_recovery.timeline import Prober, Timeline, standard_probes

pytestmark = [pytest.mark.managed_only, pytest.mark.destructive, pytest.mark.slow]


def test_redis_down_everything_else_works(
    healthy: Deployment,
    dr_tenants: TenantFactory,
    dr_config: DisasterRecoveryConfig,
    record: Recorder,
    record_series: SeriesRecorder,
) -> None:
    if "redis" not in healthy.links:
        pytest.skip("the run has no Redis (--redis-url): rate limits are in-process, there is no link to cut")
    tenant = dr_tenants()
    timeline = Timeline("Redis down")
    probes = standard_probes(healthy.client(timeout=30), tenant.analyst, prefix="dr-probe-redis")
    with Prober(timeline, probes):
        time.sleep(1.0)
        with timeline.fault("Redis down"), healthy.links["redis"].fault(Down()):
            time.sleep(dr_config.fault_duration_s / 2)
            # A fresh login (its lock-out counters live in Redis) works too.
            fresh = healthy.admin(timeout=30)
            fresh.close()
            time.sleep(dr_config.fault_duration_s / 2)
        window = timeline.windows[0]
    record_series("Redis down", "timeline", timeline.series())
    record("faults injected", 1)
    record("requests", len(timeline.samples))
    for op in ("health", "ready", "read", "write"):
        during = timeline.during(op, window)
        assert during, f"no {op} was sent during the fault"
        failed = [s.status for s in during if not 200 <= s.status < 300]
        assert not failed, f"{op} failed while only Redis was down: {failed}"
        assert max(s.latency_s for s in during) <= dr_config.answer_within_s
