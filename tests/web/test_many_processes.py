"""Several API processes: two real `vigil serve` processes on one PostgreSQL database and one Redis agree on
sessions, rate limits, idempotency and lock-outs, whichever process a request reaches; on SQLite a second
process on the same database file is refused at start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, PostgresUrls
from tests.support.cluster import Process, free_port, settings_env, start_process

REDIS_URL = os.environ.get("VIGIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "test-secret-key-that-is-long-enough-0123456789"
IP_LIMIT = 40


def _serve(values: dict[str, object], log: Path, port: int) -> Process:
    command = [sys.executable, "-m", "vigil", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return start_process(command, settings_env(values), log)


def _ready(url: str, process: Process, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise AssertionError(f"the server exited:\n{process.tail()}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready:\n{process.tail()}")


@pytest.fixture
def two_servers(postgres_urls: PostgresUrls, tmp_path: Path) -> Iterator[tuple[str, str]]:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if os.environ.get("VIGIL_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis is required but unreachable: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    prefix = f"vigil-test-{uuid.uuid4().hex[:10]}:"
    values: dict[str, object] = {
        "database_url": postgres_urls.app,
        "database_admin_url": postgres_urls.admin,
        "redis_url": REDIS_URL,
        "rate_limit_key_prefix": prefix,
        "rate_limit_per_ip": f"{IP_LIMIT}/minute",
        "secret_key": SECRET,
        "bootstrap_admin_email": ADMIN_EMAIL,
        "bootstrap_admin_password": ADMIN_PASSWORD,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "environment": "test",
        "log_json": "false",
        "log_level": "WARNING",
        "trusted_proxies": '["127.0.0.1/32"]',
    }
    ports = [free_port(), free_port()]
    # Started together: their migrations and bootstrap take turns (the start-up lock), neither fails.
    servers = [
        _serve(
            {**values, "data_dir": tmp_path / f"api-{n}", "blob_dir": tmp_path / "blobs"}, tmp_path / f"api-{n}.log", p
        )
        for n, p in enumerate(ports)
    ]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for url, server in zip(urls, servers, strict=True):
            _ready(url, server)
        yield urls[0], urls[1]
    finally:
        for server in servers:
            server.stop(grace=10)
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"*{prefix}*"):
            client.delete(key)


def _login(url: str, email: str, password: str, ip: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/auth/token", json={"email": email, "password": password}, headers={"X-Forwarded-For": ip}
    )


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.scaleout
def test_two_api_processes_agree(two_servers: tuple[str, str]) -> None:
    a, b = two_servers
    root = {"Authorization": f"Bearer {_login(a, ADMIN_EMAIL, ADMIN_PASSWORD, '10.0.0.1').json()['access_token']}"}
    tenant = httpx.post(f"{b}/api/v1/tenants", json={"name": "t"}, headers=root).json()
    email = "analyst@example.com"
    created = httpx.post(
        f"{a}/api/v1/users",
        json={"email": email, "password": PASSWORD, "role": "admin", "tenant_id": tenant["id"]},
        headers=root,
    )
    assert created.status_code == 201, created.text

    # Sessions: a login on A works on B; a logout on B ends it on A.
    tokens = _login(a, email, PASSWORD, "10.0.0.2").json()
    user = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert httpx.get(f"{b}/api/v1/me", headers=user).status_code == 200
    assert httpx.post(f"{b}/api/v1/auth/logout", headers=user).status_code in (200, 204)
    assert httpx.get(f"{a}/api/v1/me", headers=user).status_code == 401
    refreshed = httpx.post(f"{a}/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401

    # Idempotency: the same key on A then B makes one detector, and B replays A's answer.
    user = {"Authorization": f"Bearer {_login(b, email, PASSWORD, '10.0.0.3').json()['access_token']}"}
    body = {"name": "once", "algorithm": "iforest"}
    first = httpx.post(f"{a}/api/v1/detectors", json=body, headers={**user, "Idempotency-Key": "k-1"})
    again = httpx.post(f"{b}/api/v1/detectors", json=body, headers={**user, "Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])
    assert len(httpx.get(f"{a}/api/v1/detectors", headers=user).json()["items"]) == 1

    # Lock-outs: failures spread over both processes lock the account from that address on both.
    for n in range(5):
        assert _login((a, b)[n % 2], email, "wrong password, long enough", "10.0.0.4").status_code == 401
    locked = _login(a, email, PASSWORD, "10.0.0.4")
    assert locked.status_code == 429, locked.text
    assert locked.json()["type"] == "/problems/locked-out"
    assert _login(b, email, PASSWORD, "10.0.0.4").status_code == 429

    # Rate limits: one address's budget is shared (Redis), whichever process it calls.
    statuses = [
        httpx.get(f"{(a, b)[n % 2]}/api/v1/me", headers={**user, "X-Forwarded-For": "10.0.0.5"}).status_code
        for n in range(IP_LIMIT + 4)
    ]
    assert statuses[:IP_LIMIT].count(200) == IP_LIMIT
    assert statuses[IP_LIMIT:] == [429] * 4


@pytest.mark.slow
@pytest.mark.scaleout
def test_a_second_process_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    values: dict[str, object] = {"data_dir": tmp_path / "data", "secret_key": SECRET, "environment": "test"}
    port = free_port()
    first = _serve(values, tmp_path / "first.log", port)
    try:
        _ready(f"http://127.0.0.1:{port}", first)
        second = subprocess.run(
            [sys.executable, "-m", "vigil", "serve", "--port", str(free_port())],
            env=settings_env(values),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert second.returncode == 2, second.stderr
        assert "another Vigil process is already serving the SQLite database" in " ".join(second.stderr.split())
        several = subprocess.run(
            [sys.executable, "-m", "vigil", "serve", "--workers", "2"],
            env=settings_env({**values, "data_dir": tmp_path / "other"}),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert several.returncode == 2
        assert "need PostgreSQL" in " ".join(several.stderr.split())
        assert first.alive(), "the first server must not be disturbed"
    finally:
        first.stop(grace=10)
