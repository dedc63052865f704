"""What authentication and a tenant-scoped read add to a request: authenticated `GET /api/v1/me`, a list
(`GET /api/v1/detectors`), and the same with an API key, against unauthenticated `GET /health` on the same server,
measured in the same run.

    python benchmarks/bench_request_overhead.py [--requests 1000]

Prints each median and p99 and the ratio health/route (target >= 0.5). The routes are measured in rounds of
`--round` requests each, their order rotating from round to round, so a shared machine's drift (other work starting
or ending) falls on every route alike: measured one route after the other, the API key's list, measured last, came
out 0.2-0.3 ms slower than the token's, and the same lists interleaved were equal (3.24 vs 3.30 ms).
"""

from __future__ import annotations

import argparse
import gc
import time

import httpx

from harness import median, percentile, running_server, verdict

TARGET = 0.5


Route = tuple[str, dict[str, str]]


def latencies(client: httpx.Client, path: str, count: int, headers: dict[str, str]) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return times


def interleaved(client: httpx.Client, routes: dict[str, Route], count: int, per_round: int) -> dict[str, list[float]]:
    """`count` latencies of each route, a round of `per_round` requests each at a time, the order rotating."""
    for path, headers in routes.values():  # warm-up: connections, caches
        latencies(client, path, 20, headers)
    times: dict[str, list[float]] = {name: [] for name in routes}
    names = list(routes)
    for round_ in range(-(-count // per_round)):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            path, headers = routes[name]
            times[name] += latencies(client, path, min(per_round, count - len(times[name])), headers)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--round", type=int, default=50, help="requests to one route before the next route's turn")
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
        routes: dict[str, Route] = {
            "GET /health (baseline)": ("/health", {}),
            "GET /api/v1/me (access token)": ("/api/v1/me", bearer),
            "GET /api/v1/detectors (access token)": ("/api/v1/detectors", bearer),
            "GET /api/v1/detectors (API key)": ("/api/v1/detectors", api_key),
        }
        measured = interleaved(client, routes, args.requests, args.round)
    baseline = measured.pop("GET /health (baseline)")
    print(f"{args.requests} sequential requests each, keep-alive, loopback, in rounds of {args.round} (order rotating)")
    for name, times in {"GET /health (baseline)": baseline, **measured}.items():
        print(f"{name:<40} median {median(times) * 1000:6.2f} ms  p99 {percentile(times, 99) * 1000:6.2f} ms")
    for name, times in measured.items():
        ratio = median(baseline) / median(times)
        print(f"ratio health/{name:<38} = {ratio:.2f}  (target >= {TARGET}: {verdict(ratio, TARGET)})")


if __name__ == "__main__":
    main()
