"""A seeded random fault schedule over what the deployment has: the API process (SIGKILL + restart, SIGSTOP for a
while), the database link (down, blackhole, slow) and the database server itself (crash + restart, PostgreSQL),
the Redis link (down). The same seed gives the same schedule."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from vigil_validation.faults import Blackhole, Down, Latency
from vigil_validation.suites.disaster_recovery.deployment import Deployment


@dataclass(frozen=True)
class Fault:
    name: str
    gap_s: float  # quiet time before it
    duration_s: float


def palette(dr: Deployment) -> list[str]:
    names = ["api_crash", "api_freeze"]
    if "database" in dr.links:
        names += ["db_down", "db_blackhole", "db_slow", "db_crash"]
    if "redis" in dr.links:
        names += ["redis_down"]
    return names


def schedule(dr: Deployment, *, faults: int, seed: int, duration_s: float) -> list[Fault]:
    rng = random.Random(seed)
    names = palette(dr)
    return [
        Fault(rng.choice(names), gap_s=rng.uniform(0.3, 1.5), duration_s=rng.uniform(0.5, 1.0) * duration_s)
        for _ in range(faults)
    ]


def inject(dr: Deployment, fault: Fault, *, slow_ms: float) -> None:
    """Injects the fault, holds it for its duration, and ends it (a crashed process is restarted and ready)."""
    actions: dict[str, Callable[[], None]] = {
        "api_crash": lambda: _restart(dr),
        "api_freeze": lambda: _frozen(dr, fault.duration_s),
        "db_down": lambda: _link(dr, "database", Down(), fault.duration_s),
        "db_blackhole": lambda: _link(dr, "database", Blackhole(), fault.duration_s),
        "db_slow": lambda: _link(dr, "database", Latency(ms=slow_ms), fault.duration_s),
        "db_crash": lambda: _db_crash(dr, fault.duration_s),
        "redis_down": lambda: _link(dr, "redis", Down(), fault.duration_s),
    }
    actions[fault.name]()


def _restart(dr: Deployment) -> None:
    dr.api.crash()
    dr.api.start()


def _frozen(dr: Deployment, seconds: float) -> None:
    dr.api.freeze()
    try:
        time.sleep(seconds)
    finally:
        dr.api.thaw()


def _link(dr: Deployment, name: str, toxic: Down | Blackhole | Latency, seconds: float) -> None:
    with dr.links[name].fault(toxic):
        time.sleep(seconds)


def _db_crash(dr: Deployment, seconds: float) -> None:
    assert dr.postgres is not None
    dr.postgres.crash()
    time.sleep(seconds)
    dr.postgres.start()
