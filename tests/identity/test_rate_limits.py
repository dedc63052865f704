"""Rate limits per user, per API key (and a key's own limit), per address and for logins: `RateLimit-*` headers,
429 with `Retry-After`, recovery after the window; counters in memory or shared in Redis, and Redis going down
leaves the API serving (local counting, logged)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, bearer, make_settings, services_required
from tests.identity.conftest import app_client, new_user, tokens
from vigil.identity.ratelimit import Decision, RateLimiter, per_hour

REDIS_URL = os.environ.get("VIGIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _headers_of(client: TestClient, email: str) -> dict[str, str]:
    return bearer(tokens(client, email, PASSWORD)["access_token"])


def _exhaust(client: TestClient, headers: dict[str, str], path: str = "/api/v1/me", limit: int = 50) -> int:
    for n in range(limit):
        if client.get(path, headers=headers).status_code == 429:
            return n
    raise AssertionError(f"no 429 after {limit} requests")


def test_per_user_limit_headers_429_and_recovery(tmp_path: Path) -> None:
    with app_client(tmp_path, rate_limit_per_user="5/3seconds") as client:
        email, _ = new_user(client)
        headers = _headers_of(client, email)
        first = client.get("/api/v1/me", headers=headers)
        assert first.headers["RateLimit-Limit"] == "5"
        assert first.headers["RateLimit-Remaining"] == "4"
        assert first.headers["RateLimit-Policy"] == "5;w=3"
        assert _exhaust(client, headers) == 4
        refused = client.get("/api/v1/me", headers=headers)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "/problems/rate-limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 3
        assert refused.headers["RateLimit-Remaining"] == "0"
        # Another user is not affected; the first recovers after the window.
        other, _ = new_user(client)
        assert client.get("/api/v1/me", headers=_headers_of(client, other)).status_code == 200
        time.sleep(int(refused.headers["Retry-After"]) + 0.1)
        assert client.get("/api/v1/me", headers=headers).status_code == 200


def test_an_api_keys_own_limit(tmp_path: Path) -> None:
    with app_client(tmp_path) as client:
        email, _ = new_user(client, role="admin")
        admin = _headers_of(client, email)
        created = client.post(
            "/api/v1/api-keys",
            json={"name": "ci", "scopes": ["datasets:read"], "rate_limit": {"requests": 3, "window_s": 60}},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        assert created.json()["rate_limit"] == {"requests": 3, "window_s": 60}
        key = {"X-API-Key": created.json()["key"]}
        assert client.get("/api/v1/datasets", headers=key).headers["RateLimit-Limit"] == "3"
        assert _exhaust(client, key, "/api/v1/datasets") == 2
        assert client.get("/api/v1/me", headers=admin).status_code == 200  # the key's creator is not throttled


def test_per_address_and_login_limits(tmp_path: Path) -> None:
    with app_client(tmp_path, rate_limit_login_per_ip="3/minute", rate_limit_per_ip="12/minute") as client:
        email, _ = new_user(client)  # one login (the superadmin's) and two other calls from this address
        login = {"email": email, "password": PASSWORD}
        statuses = [client.post("/api/v1/auth/token", json=login).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        statuses = [client.get("/api/v1/algorithms").status_code for _ in range(8)]
        assert 429 in statuses
        assert statuses[0] == 401


def test_limits_off(tmp_path: Path) -> None:
    with app_client(tmp_path, rate_limit_enabled=False, rate_limit_per_user="1/minute") as client:
        email, _ = new_user(client)
        headers = _headers_of(client, email)
        responses = [client.get("/api/v1/me", headers=headers) for _ in range(3)]
        assert [r.status_code for r in responses] == [200, 200, 200]
        assert "RateLimit-Limit" not in responses[0].headers


def _redis_or_skip(url: str) -> None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if services_required():
            pytest.fail(f"Redis is required (VIGIL_REQUIRE_SERVICES=1) but unreachable: {exc}")
        pytest.skip(f"Redis not reachable at {url}: {exc}")


@pytest.mark.redis
def test_redis_counters_are_shared_between_servers(tmp_path: Path) -> None:
    _redis_or_skip(REDIS_URL)
    prefix = f"vigil-test-{uuid.uuid4().hex[:10]}"  # the shared Redis is safe: this test's keys only
    shared = {"redis_url": REDIS_URL, "rate_limit_key_prefix": prefix, "rate_limit_per_ip": "6/minute"}
    try:
        with app_client(tmp_path, **shared) as one, app_client(tmp_path, **shared) as two:
            seen = [c.get("/api/v1/algorithms").status_code for c in (one, two, one, two, one, two)]
            assert seen == [401] * 6
            assert one.get("/api/v1/algorithms").status_code == 429
            assert two.get("/api/v1/algorithms").status_code == 429
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own, which it may kill (the shared one is never touched)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if services_required():
            pytest.fail("redis-server is required (VIGIL_REQUIRE_SERVICES=1) but not installed")
        pytest.skip("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=0.2).ping()
            break
        except redis.RedisError:
            assert time.monotonic() < deadline, "the private redis-server did not start"
            time.sleep(0.05)
    try:
        yield url, process
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.redis
def test_redis_outage_keeps_the_api_serving(
    tmp_path: Path, private_redis: tuple[str, subprocess.Popen[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    url, process = private_redis
    with app_client(tmp_path, redis_url=url, rate_limit_per_user="4/minute", rate_limit_redis_retry_s=60) as client:
        email, _ = new_user(client)
        headers = _headers_of(client, email)
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        assert list(redis.Redis.from_url(url).scan_iter(match="vigil-limits*")), "nothing counted in Redis"
        process.kill()
        process.wait(timeout=10)
        logging.getLogger("vigil.ratelimit").addHandler(caplog.handler)
        try:
            statuses = [client.get("/api/v1/me", headers=headers).status_code for _ in range(6)]
        finally:
            logging.getLogger("vigil.ratelimit").removeHandler(caplog.handler)
        # Still serving, and still limiting — locally, from a fresh count.
        assert statuses[:4] == [200] * 4, statuses
        assert statuses[-1] == 429, statuses
        assert any("rate-limit storage unavailable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("storage", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_changed_quota_keeps_its_windows_count(storage: str, tmp_path: Path) -> None:
    """Finding 11: the counter of a tenant quota is keyed by its window, not its limit, on either storage."""
    prefix = f"vigil-test-{uuid.uuid4().hex[:10]}"
    if storage == "redis":
        _redis_or_skip(REDIS_URL)
    limiter = RateLimiter(
        make_settings(tmp_path, rate_limit_key_prefix=prefix, redis_url=REDIS_URL if storage == "redis" else None)
    )
    try:
        assert [_allowed(limiter.hit(per_hour(3), "tenant", "t1")) for _ in range(3)] == [True, True, True]
        # Raised to 5: the 3 calls of this hour still count, so 2 more are allowed, not a fresh 5.
        assert limiter.used(per_hour(5), "tenant", "t1") == 3
        assert [_allowed(limiter.hit(per_hour(5), "tenant", "t1")) for _ in range(3)] == [True, True, False]
    finally:
        if storage == "redis":
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)


def _allowed(decision: Decision | None) -> bool:
    assert decision is not None
    return decision.allowed
