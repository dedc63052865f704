"""What authentication and a tenant-scoped read add to a request: authenticated `GET /api/v1/me`, a list
(`GET /api/v1/detectors`), and the same with an API key, against unauthenticated `GET /health` on the same server,
measured in the same run.

    python benchmarks/bench_request_overhead.py [--requests 1000]

Prints each median and p99 and the ratio health/route (target >= 0.5).
"""

from __future__ import annotations

import argparse
import gc
import time

import httpx

from harness import median, percentile, running_server, verdict

TARGET = 0.5


def latencies(client: httpx.Client, path: str, count: int, headers: dict[str, str]) -> list[float]:
    for _ in range(20):  # warm-up: connections, caches
        client.get(path, headers=headers).raise_for_status()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    with running_server() as server:
        admin = server.api()
        tenant = admin.post("/tenants", json={"name": "bench"}).json()
        password = "a long benchmark admin passphrase"
        email = "ops@bench.example.com"
        admin.post("/users", json={"email": email, "password": password, "role": "admin", "tenant_id": tenant["id"]})
        client = httpx.Client(base_url=server.url, timeout=60)
        token = client.post("/api/v1/auth/token", json={"email": email, "password": password}).json()
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        key = client.post("/api/v1/api-keys", json={"name": "bench", "scopes": ["detectors:read"]}, headers=bearer)
        key.raise_for_status()
        api_key = {"X-API-Key": key.json()["key"]}
        # This process's collector out of the figures (see bench_detect_latency.py): a full collection walks the
        # libraries the harness imports and stalls the client, not the server.
        gc.collect()
        gc.freeze()
        health = latencies(client, "/health", args.requests, {})
        measured = {
            "GET /api/v1/me (access token)": latencies(client, "/api/v1/me", args.requests, bearer),
            "GET /api/v1/detectors (access token)": latencies(client, "/api/v1/detectors", args.requests, bearer),
            "GET /api/v1/detectors (API key)": latencies(client, "/api/v1/detectors", args.requests, api_key),
        }
        health_again = latencies(client, "/health", args.requests, {})
    baseline = health + health_again  # before and after, so drift on a shared machine shows in neither side alone
    print(f"{args.requests} sequential requests each, keep-alive, loopback")
    for name, times in {"GET /health (baseline)": baseline, **measured}.items():
        print(f"{name:<40} median {median(times) * 1000:6.2f} ms  p99 {percentile(times, 99) * 1000:6.2f} ms")
    for name, times in measured.items():
        ratio = median(baseline) / median(times)
        print(f"ratio health/{name:<38} = {ratio:.2f}  (target >= {TARGET}: {verdict(ratio, TARGET)})")


if __name__ == "__main__":
    main()
