"""The managed target starts a real `vigil serve`, hands out working credentials, and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_SERVER_URL, services_required
from vigil.client import VigilClient, VigilConnectionError
from vigil_validation.targets import TargetUnreachable, managed_target


def check_server(url: str, email: str, password: str) -> None:
    with VigilClient(url) as client:
        assert client.ready()["status"] == "ready"
        client.login(email, password)
        assert client.me()["role"] == "superadmin"


def assert_stopped(url: str) -> None:
    with VigilClient(url, timeout=2) as client, pytest.raises(VigilConnectionError):
        client.health()


def test_managed_sqlite_target_starts_and_stops(tmp_path: Path) -> None:
    with managed_target(report_dir=tmp_path) as target:
        assert target.kind == "managed"
        check_server(target.url, target.admin_email, target.admin_password)
        assert target.data_dir is not None
        assert (Path(target.data_dir) / "vigil.db").exists()
    assert_stopped(target.url)
    assert not Path(target.data_dir).exists()
    assert target.server_log is not None
    assert Path(target.server_log).exists()


def test_server_that_cannot_start_is_unreachable_with_its_log(tmp_path: Path) -> None:
    # An invalid setting makes `vigil serve` exit at once: the runner must say so, with the log's tail. The
    # timeout is only a ceiling (the exit ends the wait), generous for a loaded machine's slow imports.
    with (
        pytest.raises(TargetUnreachable, match="exited") as error,
        managed_target(
            report_dir=tmp_path, server_env={"VIGIL_ENVIRONMENT": "not-an-environment"}, startup_timeout=300
        ),
    ):
        pass
    assert "last lines" in str(error.value)


def _pg_conninfo() -> str:
    return PG_SERVER_URL.replace("postgresql+psycopg://", "postgresql://")


def _databases() -> set[str]:
    with psycopg.connect(_pg_conninfo(), autocommit=True, connect_timeout=3) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def _roles() -> set[str]:
    with psycopg.connect(_pg_conninfo(), autocommit=True, connect_timeout=3) as conn:
        return {row[0] for row in conn.execute("SELECT rolname FROM pg_roles")}


@pytest.mark.postgres
def test_managed_postgresql_target_uses_and_drops_a_fresh_database(tmp_path: Path) -> None:
    try:
        before, roles_before = _databases(), _roles()
    except psycopg.OperationalError as exc:
        if services_required():
            pytest.fail(f"PostgreSQL is required (VIGIL_REQUIRE_SERVICES=1) but unreachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    with managed_target(report_dir=tmp_path, database_url=PG_SERVER_URL) as target:
        assert target.database_app_url is not None
        # The shared server may gain other runs' databases meanwhile: look for this target's own.
        name = make_url(target.database_app_url).database
        assert name is not None
        assert name in _databases() - before
        assert name.startswith("vigil_validation_")
        assert "PostgreSQL" in target.database
        assert "vigil_validation_app_" in target.database_app_url
        roles = _roles()
        assert any(r.startswith("vigil_validation_app_") for r in roles)
        check_server(target.url, target.admin_email, target.admin_password)
        assert httpx.get(f"{target.url}/ready").json()["checks"]["database"] == "ok"
    assert name not in _databases()
    role = make_url(target.database_app_url).username
    assert role is not None
    assert role not in _roles(), "the run's application role is dropped"
    assert role not in roles_before
    assert_stopped(target.url)


def test_unreachable_postgresql_is_target_unreachable(tmp_path: Path) -> None:
    with (
        pytest.raises(TargetUnreachable, match="PostgreSQL"),
        managed_target(report_dir=tmp_path, database_url="postgresql+psycopg://postgres@127.0.0.1:1/none"),
    ):
        pass
