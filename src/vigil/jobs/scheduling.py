"""Fair claiming across tenants: which queued job a free worker takes next.

Round robin by recency: among tenants with queued work and fewer running jobs than their `concurrent_jobs`
quota, the tenant whose latest job *started* longest ago (or never) goes first, and it gives its oldest queued
job. A tenant with 50 queued trainings therefore gets one turn, then every other waiting tenant gets theirs —
the next claim after a quiet tenant's job is queued is that job — and no tenant ever holds more workers than
its cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

NEVER = datetime.min.replace(tzinfo=UTC)


def fair_order(
    heads: Mapping[str, str],
    load: Mapping[str, tuple[int, datetime | None]],
    caps: Mapping[str, int],
    *,
    default_cap: int,
) -> list[str]:
    """Job ids to try, best first: one per tenant (its oldest queued), tenants at their cap left out.

    >>> from datetime import timedelta
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> heads = {"busy": "job_01", "quiet": "job_99"}
    >>> fair_order(heads, {"busy": (1, t0)}, {}, default_cap=4)  # quiet never started: first
    ['job_99', 'job_01']
    >>> fair_order(heads, {"busy": (1, t0)}, {"busy": 1}, default_cap=4)  # busy is at its cap
    ['job_99']
    """
    eligible = [t for t in heads if load.get(t, (0, None))[0] < caps.get(t, default_cap)]
    eligible.sort(key=lambda t: (load.get(t, (0, None))[1] or NEVER, heads[t]))
    return [heads[t] for t in eligible]
