"""Performance isolation: while tenant A floods the server with requests and queued trainings, tenant B's request
latency (p95) and training wait stay within a configured factor of B's quiet baseline, measured in this run.

Fair claiming is what keeps B's wait short: B's training is claimed by the next free worker, not after A's queue.
Baselines under the configured floors count as the floor, so noise on tiny numbers cannot fail the test.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

from vigil.client import VigilClient
from vigil_validation.checks import watch_job
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant

CSV = b"a,b\n" + b"".join(f"{i % 7},{(i * 3) % 11}\n".encode() for i in range(60))


def _latency_ms(client: VigilClient, samples: int) -> tuple[float, float]:
    """(p50, p95) of tenant B's list call, in ms."""
    latencies = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.send("GET", "/api/v1/datasets", params={"limit": 20})
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return statistics.median(latencies), statistics.quantiles(latencies, n=20)[-1]


def _training_wait_s(client: VigilClient, detector_id: str, dataset_id: str, config: ValidationConfig) -> float:
    started = time.perf_counter()
    job = client.detectors.train(detector_id, dataset_id)
    final, _, _ = watch_job(client, job["id"], timeout=config.api.job_timeout_s, poll=0.05)
    assert final["status"] == "succeeded", final
    return time.perf_counter() - started


def test_a_noisy_neighbour_does_not_slow_a_quiet_tenant(
    admin: VigilClient,
    tenant_factory: Callable[[], ProvisionedTenant],
    validation_config: ValidationConfig,
    record: Callable[..., None],
) -> None:
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
    base_p50, base_p95 = _latency_ms(quiet.viewer, settings.samples)
    base_wait = _training_wait_s(quiet.analyst, q_detector, q_dataset, validation_config)

    stop = threading.Event()
    sent = [0]
    lock = threading.Lock()

    def flood_requests() -> None:
        # Another address (the managed server trusts the loopback proxy), so the per-address limit is A's own.
        client = noisy.viewer.with_token(noisy.viewer.token)
        try:
            while not stop.is_set():
                with lock:
                    if sent[0] >= settings.flood_requests:
                        return
                    sent[0] += 1
                client.send("GET", "/api/v1/datasets", headers={"X-Forwarded-For": "198.51.100.77"})
        finally:
            client.close()

    for _ in range(settings.flood_jobs):
        noisy.analyst.detectors.train(n_detector, n_dataset)
    threads = [threading.Thread(target=flood_requests, daemon=True) for _ in range(settings.flood_concurrency)]
    for thread in threads:
        thread.start()
    try:
        busy_p50, busy_p95 = _latency_ms(quiet.viewer, settings.samples)
        busy_wait = _training_wait_s(quiet.analyst, q_detector, q_dataset, validation_config)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    floor = settings.latency_floor_ms
    p50_factor, p95_factor = busy_p50 / max(base_p50, floor), busy_p95 / max(base_p95, floor)
    wait_factor = busy_wait / max(base_wait, settings.job_wait_floor_s)
    record("quiet_latency_p50_baseline", base_p50, "ms")
    record("quiet_latency_p50_under_flood", busy_p50, "ms")
    record("quiet_latency_p50_factor", p50_factor, "x")
    record("quiet_latency_p95_baseline", base_p95, "ms")
    record("quiet_latency_p95_under_flood", busy_p95, "ms")
    record("quiet_latency_p95_factor", p95_factor, "x")
    record("quiet_job_wait_baseline", base_wait, "s")
    record("quiet_job_wait_under_flood", busy_wait, "s")
    record("quiet_job_wait_factor", wait_factor, "x")
    record("flood_requests_sent", sent[0])
    assert p50_factor <= settings.latency_p50_factor, f"B's p50 went from {base_p50:.1f} to {busy_p50:.1f} ms"
    assert p95_factor <= settings.latency_p95_factor, f"B's p95 went from {base_p95:.1f} to {busy_p95:.1f} ms"
    assert wait_factor <= settings.job_wait_factor, (
        f"B's training took {busy_wait:.2f} s under A's flood against {base_wait:.2f} s quiet"
    )
