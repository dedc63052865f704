"""Fixtures for the platform's own tests: a real app on a fresh SQLite (or PostgreSQL) database, real HTTP calls
through Starlette's TestClient, and users of each role provisioned through the API."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from vigil.app import create_app
from vigil.config import Settings
from vigil.migrations.roles import grant_statements

# Fixtures of a scaled-out deployment (PostgreSQL, a broker, real `vigil worker` processes), for any test module.
pytest_plugins = ["tests.jobs.workers"]

ADMIN_EMAIL = "root@vigil.test"
ADMIN_PASSWORD = "a very long bootstrap passphrase"
PASSWORD = "correct horse battery staple 42"
PG_SERVER_URL = os.environ.get("VIGIL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def services_required() -> bool:
    return os.environ.get("VIGIL_REQUIRE_SERVICES") == "1"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "environment": "test",
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
        "bootstrap_admin_email": ADMIN_EMAIL,
        "bootstrap_admin_password": ADMIN_PASSWORD,
        # Cheap hashing keeps tests fast; production parameters are the defaults.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "job_poll_interval_s": 0.05,
        "log_json": False,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def backend() -> str:
    """`VIGIL_TEST_DATABASE=postgresql` runs the tests built on the `settings` fixture on PostgreSQL (as an
    application role under row-level security) instead of SQLite; `make test` runs both."""
    return os.environ.get("VIGIL_TEST_DATABASE", "sqlite")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PostgreSQL pass reruns only what the database changes: the tests built on the `settings` fixture.
    The rest (the engines, tests that pick their databases themselves, as `any_db_settings` does for both) ran
    in the SQLite pass already, identically; running them again would only double CI's time."""
    if backend() != "postgresql":
        return
    uses = {item: "settings" in getattr(item, "fixturenames", ()) for item in items}
    config.hook.pytest_deselected(items=[item for item, used in uses.items() if not used])
    items[:] = [item for item, used in uses.items() if used]


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if backend() == "postgresql":
        urls: PostgresUrls = request.getfixturevalue("postgres_urls")
        return make_settings(tmp_path / "data", database_url=urls.app, database_admin_url=urls.admin)
    return make_settings(tmp_path / "data")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (its owner's URL), dropped afterwards; skips when PostgreSQL is absent."""
    server = make_url(PG_SERVER_URL)
    name = f"vigil_test_{uuid.uuid4().hex[:12]}"
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = psycopg.connect(conninfo, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if services_required():
            pytest.fail(f"PostgreSQL is required (VIGIL_REQUIRE_SERVICES=1) but unreachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {server.render_as_string()}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_database() as url:
        yield url


@dataclass(frozen=True)
class PostgresUrls:
    """A fresh database: `admin` is the owner's URL (migrations), `app` a login role that owns nothing and is no
    superuser — as in production, so row-level security holds for it."""

    admin: str
    app: str
    role: str


@contextlib.contextmanager
def app_role(postgres_url: str) -> Iterator[PostgresUrls]:
    """A login role for the application on the database at `postgres_url`, dropped (with the database) after."""
    admin = make_url(postgres_url)
    role = f"vigil_test_app_{uuid.uuid4().hex[:12]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS')
        for statement in grant_statements(role, str(admin.database)):
            conn.execute(statement)  # built from a checked identifier
    try:
        yield PostgresUrls(
            admin=postgres_url, app=admin.set(username=role, password=None).render_as_string(False), role=role
        )
    finally:
        server = admin.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{admin.database}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def postgres_urls(postgres_url: str) -> Iterator[PostgresUrls]:
    with app_role(postgres_url) as urls:
        yield urls


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings on each backend: tests using this run on SQLite and on PostgreSQL (as a non-owner app role,
    with migrations as the owner — `build_engine(settings, admin=True)`)."""
    if request.param == "sqlite":
        return make_settings(tmp_path / "data")
    urls: PostgresUrls = request.getfixturevalue("postgres_urls")
    return make_settings(tmp_path / "data", database_url=urls.app, database_admin_url=urls.admin)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, email: str, password: str) -> str:
    response = client.post("/api/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@dataclass
class Tenant:
    id: str
    admin: dict[str, str]
    analyst: dict[str, str]
    viewer: dict[str, str]


def provision_tenant(client: TestClient, root: dict[str, str] | None = None) -> Tenant:
    """A tenant with an admin, an analyst and a viewer, made through the API as the superadmin would."""
    root = root or bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    suffix = uuid.uuid4().hex[:8]
    tenant = client.post("/api/v1/tenants", json={"name": f"tenant-{suffix}"}, headers=root)
    assert tenant.status_code == 201, tenant.text
    tenant_id = tenant.json()["id"]
    headers = {}
    for role in ("admin", "analyst", "viewer"):
        email = f"{role}-{suffix}@example.com"
        created = client.post(
            "/api/v1/users",
            json={"email": email, "password": PASSWORD, "role": role, "tenant_id": tenant_id},
            headers=root,
        )
        assert created.status_code == 201, created.text
        headers[role] = bearer(login(client, email, PASSWORD))
    return Tenant(id=tenant_id, admin=headers["admin"], analyst=headers["analyst"], viewer=headers["viewer"])


@pytest.fixture
def make_tenant(client: TestClient) -> Callable[[], Tenant]:
    """Provisions tenants (`provision_tenant`) with one superadmin login."""
    root = bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    return lambda: provision_tenant(client, root)


@pytest.fixture
def tenant(make_tenant: Callable[[], Tenant]) -> Tenant:
    return make_tenant()


def wait_for_job(client: TestClient, job_id: str, headers: dict[str, str], timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s")
