"""Performance isolation: while tenant A floods the server with requests and queued trainings, tenant B's request
latency (p50, p95) and training wait stay within a bound derived from B's quiet baseline measured in this run.

Fair claiming is what keeps B's wait short: B's training is claimed by the next free worker, not after A's queue.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Callable

import pytest

from vigil.client import VigilClient
from vigil_validation.checks import watch_job
from vigil_validation.config import ValidationConfig
from vigil_validation.load.flood import flood
from vigil_validation.plugin import ProvisionedTenant
from vigil_validation.targets import Target

CSV = b"a,b\n" + b"".join(f"{i % 7},{(i * 3) % 11}\n".encode() for i in range(60))


# CPython hands its interpreter lock between a process's threads at most every switch interval (5 ms): a request
# thread coming back from I/O (each database round trip, the socket) waits behind CPU-bound work for it — the convoy
# effect. On requests of a few milliseconds that costs about as much again as the fair share of CPU time itself.
LOCK_HANDOVER = 2.0


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    """(p50, p95)."""
    return statistics.median(latencies), statistics.quantiles(latencies, n=20)[-1]


def _latency_ms(client: VigilClient, samples: int) -> list[float]:
    """Tenant B's list call, `samples` times, in ms."""
    latencies = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.send("GET", "/api/v1/datasets", params={"limit": 20})
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return latencies


def _training_wait_s(client: VigilClient, detector_id: str, dataset_id: str, config: ValidationConfig) -> float:
    started = time.perf_counter()
    job = client.detectors.train(detector_id, dataset_id)
    final, _, _ = watch_job(client, job["id"], timeout=config.api.job_timeout_s, poll=0.05)
    assert final["status"] == "succeeded", final
    return time.perf_counter() - started


# Alone: its bound counts the work of tenants A and B on the server; a third test's load would be unaccounted noise.
@pytest.mark.alone
def test_a_noisy_neighbour_does_not_slow_a_quiet_tenant(
    target: Target,
    admin: VigilClient,
    tenant_factory: Callable[[], ProvisionedTenant],
    validation_config: ValidationConfig,
    record: Callable[..., None],
) -> None:
    """B's latency is held to A's own under the flood, B's training wait to its quiet ceiling times the share B may
    lose; all measured or known in this run:

    * **Quiet ceiling** — the quiet baseline is measured `quiet_rounds` times, and the *slowest* round's p50, p95
      and training wait are the reference: the spread of repeated quiet measurements is this machine's own noise
      (other work on the shared cores), so a busy figure inside it is no evidence of a neighbour's harm.
    * **Fair share** — during the flood the server has at most `flood_concurrency` requests of A, A's running
      trainings (its `concurrent_jobs` quota, else every flooded job) and B's own work to run: `share` = their
      count. A fair server gives B at least one share of its time, so B's work may take up to `share` times longer.
    * **Latency** — A's own requests (the same route, at the same moments, timed by the flooding processes) are
      what the loaded server gives any request, so B's p50 and p95 are held to A's, within the interpreter-lock
      hand-over (`LOCK_HANDOVER`: B's requests block on I/O several times each and wait for the lock behind
      CPU-bound work as A's do; B's figures are of 40 samples, A's of hundreds). Not to B's quiet figures times the
      share: the flood is closed-loop, so the server never holds more than `share` requests, and what that load
      costs every request does not scale with B's quiet latency — on a fast server (a quiet p95 of 1.9–3.7 ms) B's
      p95 under the flood was 18–25 ms, A's 23–26 ms; on PostgreSQL B's p50 went 4.1 → 34.7 ms, A's was 33.9 ms.
      The quiet figures and their factors are recorded.
    * **Training wait** — a training runs for a fraction of a second, mostly in native code, so the hand-over is
      negligible; with fair claiming B's training waits for at most one of A's trainings to free a worker (each as
      long as B's own), then runs itself: bound `2 × share` (8). Claims in arrival order would make B wait behind
      all of A's `flood_jobs` queued trainings (20 by default), ten times a training on two workers.

    A server that let A's load starve B (no per-tenant job cap, claims in arrival order, a request queue A can
    fill) exceeds it: B's training then waits behind A's queued trainings, B's requests behind A's.
    """
    settings = validation_config.multi_tenant
    noisy, quiet = tenant_factory(), tenant_factory()
    if settings.noisy_concurrent_jobs is not None:
        quotas = {"concurrent_jobs": settings.noisy_concurrent_jobs}
        admin.call("PATCH", f"/api/v1/tenants/{noisy.id}", json={"quotas": quotas})
    q_dataset = quiet.analyst.datasets.upload(CSV, name="quiet")["id"]
    q_detector = quiet.analyst.detectors.create(name="quiet", algorithm="iforest", contamination=0.1)["id"]
    n_dataset = noisy.analyst.datasets.upload(CSV, name="noisy")["id"]
    n_detector = noisy.analyst.detectors.create(name="noisy", algorithm="iforest", contamination=0.1)["id"]

    _latency_ms(quiet.viewer, 3)  # warm-up: connections, caches, the algorithm's first fit
    _training_wait_s(quiet.analyst, q_detector, q_dataset, validation_config)
    rounds = [_percentiles(_latency_ms(quiet.viewer, settings.samples)) for _ in range(settings.quiet_rounds)]
    waits = [
        _training_wait_s(quiet.analyst, q_detector, q_dataset, validation_config) for _ in range(settings.quiet_rounds)
    ]
    base_p50, base_p95, base_wait = max(r[0] for r in rounds), max(r[1] for r in rounds), max(waits)
    a_running = settings.noisy_concurrent_jobs or settings.flood_jobs
    share = settings.flood_concurrency + a_running + 1
    wait_bound = 2 * share

    for _ in range(settings.flood_jobs):
        noisy.analyst.detectors.train(n_detector, n_dataset)
    # A's requests come from processes of their own: in this one, B's measuring thread would wait behind them for
    # this process's interpreter lock, and count that wait as the server's (`load/flood.py`).
    processes = multiprocessing.get_context("spawn")
    stop, sent = processes.Event(), processes.Value("i", 0)
    a_latencies = processes.Array("d", settings.flood_requests)
    readies = [processes.Event() for _ in range(settings.flood_concurrency)]
    urls = target.api_urls or [target.url]
    flooders = [
        processes.Process(
            target=flood,
            # Another address (the managed server trusts the loopback proxy), so the per-address limit is A's own.
            args=(urls, noisy.viewer.token, "/api/v1/datasets", "198.51.100.77", sent, a_latencies),
            kwargs={"ready": ready, "stop": stop},
            daemon=True,
        )
        for ready in readies
    ]
    for flooder in flooders:
        flooder.start()
    try:
        for ready in readies:
            assert ready.wait(60), "a flooding process did not start"
        busy_p50, busy_p95 = _percentiles(_latency_ms(quiet.viewer, settings.samples))
        busy_wait = _training_wait_s(quiet.analyst, q_detector, q_dataset, validation_config)
    finally:
        stop.set()
        for flooder in flooders:
            flooder.join(timeout=30)
            if flooder.is_alive():
                flooder.kill()

    record("quiet_latency_p50_ceiling", base_p50, "ms")
    record("quiet_latency_p50_median_round", statistics.median(r[0] for r in rounds), "ms")
    record("quiet_latency_p50_under_flood", busy_p50, "ms")
    record("quiet_latency_p95_ceiling", base_p95, "ms")
    record("quiet_latency_p95_under_flood", busy_p95, "ms")
    record("quiet_job_wait_ceiling", base_wait, "s")
    record("quiet_job_wait_under_flood", busy_wait, "s")
    record("latency_bound_to_noisy_tenant", LOCK_HANDOVER, "x")
    record("job_wait_bound", wait_bound, "x")
    record("quiet_latency_p50_factor", busy_p50 / base_p50, "x")
    record("quiet_latency_p95_factor", busy_p95 / base_p95, "x")
    record("quiet_job_wait_factor", busy_wait / base_wait, "x")
    record("flood_requests_sent", sent.value)
    a_done = [x for x in a_latencies[: sent.value] if x > 0]
    a_p50, a_p95 = _percentiles(a_done)
    record("noisy_latency_p50_under_flood", a_p50, "ms")
    record("noisy_latency_p95_under_flood", a_p95, "ms")
    assert busy_p50 <= LOCK_HANDOVER * a_p50, (
        f"B's p50 under the flood was {busy_p50:.1f} ms against A's own {a_p50:.1f} ms (bound ×{LOCK_HANDOVER:g})"
    )
    assert busy_p95 <= LOCK_HANDOVER * a_p95, (
        f"B's p95 under the flood was {busy_p95:.1f} ms against A's own {a_p95:.1f} ms (bound ×{LOCK_HANDOVER:g})"
    )
    assert busy_wait <= wait_bound * base_wait, (
        f"B's training took {busy_wait:.2f} s under A's flood against {base_wait:.2f} s quiet (bound ×{wait_bound:g})"
    )
