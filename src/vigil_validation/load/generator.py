"""The open-model load generator: requests arrive at a fixed rate whatever the server does, and each latency is
measured from the moment its request was *due*, not from when it was sent — so a server that stalls cannot slow
the generator down and hide its own stall (coordinated omission).

It is bounded in every direction, and refuses to start otherwise: a finite rate and duration, at most
`max_requests` in all, at most `max_in_flight` at once (an arrival beyond that is shed and counted as an error:
the server is not keeping up), a timeout per request, and a hard stop at the end of the plan plus that timeout.
It only sends to loopback addresses unless the caller says the target was named explicitly (`--target`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import random
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from vigil_validation.load.histogram import LatencyStats

MAX_DURATION_S = 3600.0
MAX_REQUESTS = 1_000_000
MAX_IN_FLIGHT = 1024
MAX_TIMEOUT_S = 300.0
PROGRESS_EVERY_S = 5.0
SHED = "shed"
OK_STATUSES = frozenset({200, 201, 202, 204})


class LoadError(ValueError):
    """A load plan or target the generator refuses: unbounded, out of range, or not on loopback."""


@dataclass(frozen=True)
class LoadPlan:
    """How much load: `rate_per_s` arrivals per second for `duration_s`, within the caps."""

    rate_per_s: float
    duration_s: float
    max_requests: int = 100_000
    max_in_flight: int = 64
    request_timeout_s: float = 30.0
    seed: int = 0

    @property
    def planned(self) -> int:
        return math.ceil(self.rate_per_s * self.duration_s)

    def check(self) -> None:
        """Raises `LoadError` naming the first unbounded or out-of-range setting."""
        for name, value, cap in (
            ("rate_per_s", self.rate_per_s, None),
            ("duration_s", self.duration_s, MAX_DURATION_S),
            ("request_timeout_s", self.request_timeout_s, MAX_TIMEOUT_S),
        ):
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise LoadError(f"{name} must be a finite number above 0, got {value!r}: the load must be bounded")
            if cap is not None and value > cap:
                raise LoadError(f"{name} must be at most {cap:g}, got {value:g}")
        if not 1 <= self.max_requests <= MAX_REQUESTS:
            raise LoadError(f"max_requests must be in 1..{MAX_REQUESTS}, got {self.max_requests}")
        if not 1 <= self.max_in_flight <= MAX_IN_FLIGHT:
            raise LoadError(f"max_in_flight must be in 1..{MAX_IN_FLIGHT}, got {self.max_in_flight}")
        if self.planned > self.max_requests:
            raise LoadError(
                f"{self.rate_per_s:g}/s for {self.duration_s:g}s is {self.planned} requests, over max_requests "
                f"({self.max_requests}): lower the rate or the duration, or raise the cap"
            )


@dataclass(frozen=True)
class VirtualUser:
    """One simulated client: its credentials and the address it stands for (sent as `X-Forwarded-For`)."""

    name: str
    headers: dict[str, str]
    context: dict[str, Any] = field(default_factory=dict)


Send = Callable[[httpx.AsyncClient, VirtualUser], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Operation:
    """A kind of request in the mix, drawn with probability proportional to `weight`."""

    name: str
    weight: float
    send: Send
    ok_statuses: frozenset[int] = OK_STATUSES


@dataclass
class LoadResult:
    plan: LoadPlan
    label: str
    elapsed_s: float = 0.0
    dispatched_s: float = 0.0  # when the last arrival was sent (or shed): the schedule never waits on the server
    offered: int = 0
    operations: dict[str, LatencyStats] = field(default_factory=dict)
    per_second: list[dict[str, int]] = field(default_factory=list)  # [{ok, errors}] by second since the start

    @property
    def overall(self) -> LatencyStats:
        total = LatencyStats()
        for stats in self.operations.values():
            total.merge(stats)
        return total

    @property
    def shed(self) -> int:
        return sum(stats.errors.get(SHED, 0) for stats in self.operations.values())

    def summary(self) -> dict[str, Any]:
        duration = self.plan.duration_s
        return {
            "label": self.label,
            "offered_rate_per_s": self.plan.rate_per_s,
            "duration_s": self.plan.duration_s,
            "elapsed_s": round(self.elapsed_s, 3),
            "dispatched_s": round(self.dispatched_s, 3),
            "offered": self.offered,
            "overall": self.overall.summary(duration),
            "operations": {name: stats.summary(duration) for name, stats in sorted(self.operations.items())},
        }


def check_target(url: str, *, named_explicitly: bool) -> None:
    """Load goes to loopback (127.0.0.0/8, ::1, localhost) only, unless the operator named the target."""
    host = (urlsplit(url).hostname or "").strip("[]").lower()
    if named_explicitly:
        return
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise LoadError(
        f"refusing to send load to {host or url!r}: not a loopback address; name a deployment with --target to "
        "load it on purpose"
    )


def run_load(
    base_url: str,
    plan: LoadPlan,
    operations: Sequence[Operation],
    users: Sequence[VirtualUser],
    *,
    named_explicitly: bool = False,
    label: str = "load",
    progress: bool = True,
) -> LoadResult:
    """Runs the plan against `base_url` and returns what it measured. Refuses (`LoadError`) before sending
    anything if the plan is unbounded or the target is not allowed."""
    plan.check()
    check_target(base_url, named_explicitly=named_explicitly)
    if not operations or not users:
        raise LoadError("a load needs at least one operation and one virtual user")
    if any(not math.isfinite(op.weight) or op.weight < 0 for op in operations) or not any(
        op.weight > 0 for op in operations
    ):
        raise LoadError("operation weights must be finite, not negative, and not all 0")
    return asyncio.run(_run(base_url, plan, list(operations), list(users), label=label, progress=progress))


async def _run(
    base_url: str,
    plan: LoadPlan,
    operations: list[Operation],
    users: list[VirtualUser],
    *,
    label: str,
    progress: bool,
) -> LoadResult:
    result = LoadResult(plan=plan, label=label, operations={op.name: LatencyStats() for op in operations})
    draw = random.Random(plan.seed)
    chosen = draw.choices(operations, weights=[op.weight for op in operations], k=plan.planned)
    buckets = [{"ok": 0, "errors": 0} for _ in range(math.ceil(plan.duration_s + plan.request_timeout_s) + 1)]
    limits = httpx.Limits(max_connections=plan.max_in_flight, max_keepalive_connections=plan.max_in_flight)
    loop = asyncio.get_running_loop()
    in_flight: set[asyncio.Task[None]] = set()

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=plan.request_timeout_s) as client:
        start = loop.time()

        async def one(op: Operation, user: VirtualUser, due: float) -> None:
            error: str | None = None
            try:
                response = await asyncio.wait_for(op.send(client, user), plan.request_timeout_s)
                if response.status_code not in op.ok_statuses:
                    error = f"http_{response.status_code}"
            except (TimeoutError, httpx.TimeoutException):
                error = "timeout"
            except httpx.TransportError as exc:
                error = f"transport:{type(exc).__name__}"
            except Exception as exc:  # an operation's own check failed: counted, never fatal to the run
                error = f"client:{type(exc).__name__}"
            finished = loop.time()
            result.operations[op.name].record(finished - due, error=error)
            bucket = buckets[min(len(buckets) - 1, int(finished - start))]
            bucket["ok" if error is None else "errors"] += 1

        next_report = start + PROGRESS_EVERY_S
        for i, op in enumerate(chosen):
            due = start + i / plan.rate_per_s
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            result.offered += 1
            if len(in_flight) >= plan.max_in_flight:
                result.operations[op.name].fail_unsent(SHED)
                continue
            task = asyncio.create_task(one(op, users[i % len(users)], due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            if progress and loop.time() >= next_report:
                next_report += PROGRESS_EVERY_S
                _report(label, result, loop.time() - start, len(in_flight))
        result.dispatched_s = loop.time() - start
        await _drain(in_flight, plan.request_timeout_s + 1)
        result.elapsed_s = loop.time() - start
    result.per_second = buckets[: math.ceil(result.elapsed_s) + 1]
    if progress:
        _report(label, result, result.elapsed_s, 0)
    return result


async def _drain(tasks: set[asyncio.Task[None]], timeout_s: float) -> None:
    """Every request has its timeout: wait that long at most, then stop whatever is left."""
    if not tasks:
        return
    _, pending = await asyncio.wait(set(tasks), timeout=timeout_s)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _report(label: str, result: LoadResult, elapsed: float, in_flight: int) -> None:
    overall = result.overall
    # Straight to the terminal: pytest captures a test's output, and a load of minutes should show it is alive.
    print(
        f"  [{label}] {elapsed:5.1f}s/{result.plan.duration_s:g}s  {result.offered} sent at "
        f"{result.plan.rate_per_s:g}/s, {overall.ok} ok, {overall.error_count} errors, {in_flight} in flight, "
        f"p99 {overall.percentile_ms(99):.1f} ms",
        file=sys.__stderr__,
        flush=True,
    )
