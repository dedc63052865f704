"""The load generator: refuses unbounded plans and non-loopback targets, keeps its open-model promise (latency from
the due time, so a stalled server cannot hide), sheds beyond its in-flight bound, and stops by itself."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import httpx
import pytest

from vigil_validation.load import (
    LoadError,
    LoadPlan,
    Operation,
    ProcessSample,
    ProcessSampler,
    VirtualUser,
    check_target,
    growth_slope,
    run_load,
)
from vigil_validation.load.sampler import MIB

USERS = [VirtualUser(name="vu", headers={})]


class _Handler(BaseHTTPRequestHandler):
    delay_s = 0.0

    def do_GET(self) -> None:
        time.sleep(self.delay_s)
        status = 500 if self.path == "/fail" else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: object) -> None:
        pass


def _serve(server_class: type[HTTPServer], delay_s: float) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"delay_s": delay_s})
    server = server_class(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def quick_server() -> Iterator[str]:
    yield from _serve(ThreadingHTTPServer, 0.0)


@pytest.fixture
def serial_server() -> Iterator[str]:
    """One request at a time, 50 ms each: at most 20 requests per second, whatever is asked."""
    yield from _serve(HTTPServer, 0.05)


def get(path: str) -> Operation:
    async def send(client: httpx.AsyncClient, _: VirtualUser) -> httpx.Response:
        return await client.get(path)

    return Operation(name=path, weight=1, send=send)


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (LoadPlan(rate_per_s=0, duration_s=1), "rate_per_s"),
        (LoadPlan(rate_per_s=math.inf, duration_s=1), "rate_per_s"),
        (LoadPlan(rate_per_s=math.nan, duration_s=1), "rate_per_s"),
        (LoadPlan(rate_per_s=10, duration_s=math.inf), "duration_s"),
        (LoadPlan(rate_per_s=10, duration_s=0), "duration_s"),
        (LoadPlan(rate_per_s=10, duration_s=7200), "duration_s"),
        (LoadPlan(rate_per_s=1000, duration_s=60, max_requests=1000), "max_requests"),
        (LoadPlan(rate_per_s=10, duration_s=1, max_requests=10**9), "max_requests"),
        (LoadPlan(rate_per_s=10, duration_s=1, max_in_flight=0), "max_in_flight"),
        (LoadPlan(rate_per_s=10, duration_s=1, request_timeout_s=math.inf), "request_timeout_s"),
    ],
)
def test_unbounded_or_out_of_range_plans_are_refused(plan: LoadPlan, message: str) -> None:
    with pytest.raises(LoadError, match=message):
        run_load("http://127.0.0.1:9", plan, [get("/")], USERS)


@pytest.mark.parametrize(
    "url", ["http://10.1.2.3:8000", "http://192.168.0.10", "https://example.com", "http://8.8.8.8"]
)
def test_targets_off_loopback_are_refused_unless_named(url: str) -> None:
    with pytest.raises(LoadError, match="loopback"):
        check_target(url, named_explicitly=False)
    check_target(url, named_explicitly=True)
    with pytest.raises(LoadError, match="loopback"):  # refused before a single request
        run_load(url, LoadPlan(rate_per_s=1, duration_s=1), [get("/")], USERS)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://127.3.2.1", "http://localhost:1", "http://[::1]:80"])
def test_loopback_targets_are_allowed(url: str) -> None:
    check_target(url, named_explicitly=False)


def test_a_load_runs_at_its_rate_and_counts_every_outcome(quick_server: str) -> None:
    plan = LoadPlan(rate_per_s=40, duration_s=1.0, request_timeout_s=5)
    ok, failing = get("/ok"), Operation(name="/fail", weight=1, send=get("/fail").send)
    result = run_load(quick_server, plan, [ok, failing], USERS, progress=False)
    assert result.offered == plan.planned == 40
    assert result.overall.count == 40
    assert result.operations["/ok"].error_count == 0
    assert result.operations["/fail"].errors == {"http_500": result.operations["/fail"].count}
    assert result.operations["/ok"].count + result.operations["/fail"].count == 40
    summary = result.summary()
    assert set(summary["overall"]) >= {"p50", "p90", "p99", "p99_9", "max", "throughput_per_s", "error_rate"}
    assert sum(second["ok"] + second["errors"] for second in result.per_second) == 40


def test_latency_is_measured_from_the_due_time(serial_server: str) -> None:
    """40 arrivals in one second at a server that answers 20 per second: every request is sent on time (the
    schedule does not wait for answers), and the last is answered about two seconds after the start, one second
    after it was due. A generator that waited for answers before sending (a closed model) would send the last
    request at two seconds and report 50 ms for every one."""
    plan = LoadPlan(rate_per_s=40, duration_s=1.0, request_timeout_s=10, max_in_flight=64)
    result = run_load(serial_server, plan, [get("/slow")], USERS, progress=False)
    stats = result.operations["/slow"]
    assert stats.error_count == 0, stats.errors
    assert result.dispatched_s < plan.duration_s + 0.5, result.dispatched_s
    assert stats.max_ms >= 700, stats.summary(plan.duration_s)
    assert stats.percentile_ms(99) >= 500


def test_arrivals_beyond_the_in_flight_bound_are_shed_and_the_load_stops_by_itself(serial_server: str) -> None:
    plan = LoadPlan(rate_per_s=50, duration_s=1.0, request_timeout_s=0.12, max_in_flight=4)
    started = time.monotonic()
    result = run_load(serial_server, plan, [get("/slow")], USERS, progress=False)
    elapsed = time.monotonic() - started
    errors = result.operations["/slow"].errors
    assert errors.get("shed", 0) > 0, errors
    assert errors.get("timeout", 0) > 0, errors
    assert result.overall.count == result.offered == 50
    # The plan's duration plus one request timeout (and a second of slack for the last tasks' cancellation).
    assert elapsed < plan.duration_s + plan.request_timeout_s + 5


def test_memory_growth_slope_finds_a_leak_and_forgives_noise() -> None:
    flat = [ProcessSample(t / 2, 500 * MIB + (MIB if t % 2 else 0), 0.0) for t in range(120)]
    leaking = [ProcessSample(t / 2, 500 * MIB + t * MIB // 4, 0.0) for t in range(120)]
    assert abs(growth_slope(flat, after_s=10)) < 1
    assert growth_slope(leaking, after_s=10) == pytest.approx(30, rel=0.01)  # 0.5 MiB/s
    with pytest.raises(ValueError, match="too few"):
        growth_slope(flat[:5], after_s=10)


def test_the_sampler_reads_this_process() -> None:
    with ProcessSampler(pid=os.getpid(), base_url="http://127.0.0.1:9", interval_s=0.05) as sampler:
        sum(i * i for i in range(2_000_000))  # some CPU
    assert len(sampler.samples) >= 2
    assert sampler.peak_rss_bytes > 10 * MIB
    assert sampler.cpu_seconds > 0
