"""Row-level security on PostgreSQL: the database itself keeps tenants apart, whatever the application asks.

Two tenants upload through the API; then, connected as the application's own role (neither owner nor
superuser), queries *without* any tenant filter see only the tenant named by the transaction setting — and
nothing without one. That is the second wall: a repository bug that forgets `WHERE tenant_id` returns nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from tests.conftest import PostgresUrls, Tenant, make_settings
from vigil.app import create_app
from vigil.core.database import Database, TenantScope, bind_platform, bind_tenant, platform_access

pytestmark = pytest.mark.postgres
TENANT_TABLES = (
    "users",
    "auth_sessions",
    "api_keys",
    "audit_events",
    "datasets",
    "dataset_reports",
    "detectors",
    "model_versions",
    "jobs",
    "feedback_labels",
    "streams",
    "stream_batches",
    "stream_snapshots",
    "stream_anomalies",
    "stream_drifts",
)


@pytest.fixture
def client(postgres_urls: PostgresUrls, tmp_path: Path) -> Iterator[TestClient]:
    """The app on PostgreSQL as its own role (this module's `make_tenant` provisions through it)."""
    settings = make_settings(tmp_path / "data", database_url=postgres_urls.app, database_admin_url=postgres_urls.admin)
    with TestClient(create_app(settings, run_workers=False), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def two_tenants(client: TestClient, make_tenant: Callable[[], Tenant]) -> tuple[Tenant, Tenant]:
    a, b = make_tenant(), make_tenant()
    for tenant, names in ((a, ("a1", "a2")), (b, ("b1",))):
        for name in names:
            headers = {**tenant.analyst, "Content-Type": "text/csv"}
            r = client.post("/api/v1/datasets", params={"name": name}, content=b"x,y\n1,2\n", headers=headers)
            assert r.status_code == 201, r.text
    return a, b


def test_rls_alone_blocks_a_cross_tenant_read(postgres_urls: PostgresUrls, two_tenants: tuple[Tenant, Tenant]) -> None:
    urls = postgres_urls
    a, b = two_tenants
    engine = create_engine(urls.app)
    try:
        with engine.connect() as conn:
            role = conn.execute(text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")).one()
            assert tuple(role) == (False, False), "the app role must be bound by RLS"
            # No tenant setting: nothing at all, from any tenant-owned table.
            for table in TENANT_TABLES:
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
            # Tenant B's setting, and a query with no WHERE clause: only B's rows.
            conn.execute(text("SELECT set_config('vigil.tenant_id', :t, true)"), {"t": b.id})
            rows = conn.execute(text("SELECT tenant_id, name FROM datasets")).all()
            assert sorted(r.name for r in rows) == ["b1"]
            assert {r.tenant_id for r in rows} == {b.id}
            assert {r[0] for r in conn.execute(text("SELECT tenant_id FROM users"))} == {b.id}
            # Neither can B's transaction write into A, nor change A's rows.
            assert (
                conn.execute(text("UPDATE datasets SET name = 'stolen' WHERE tenant_id = :a"), {"a": a.id}).rowcount
                == 0
            )
            assert conn.execute(text("DELETE FROM datasets WHERE tenant_id = :a"), {"a": a.id}).rowcount == 0
            conn.rollback()
            conn.execute(text("SELECT set_config('vigil.tenant_id', :t, true)"), {"t": b.id})
            with pytest.raises(ProgrammingError, match="row-level security"):
                conn.execute(
                    text(
                        "INSERT INTO datasets (id, tenant_id, name, n_rows, n_columns, columns_schema, size_bytes,"
                        " source_format, origin, blob_key, created_at, updated_at) VALUES ('ds_x', :a, 'planted', 0,"
                        " 0, '[]', 0, 'csv', '{}', 'k', now(), now())"
                    ),
                    {"a": a.id},
                )
            conn.rollback()
            # The setting lasts one transaction: the next one sees nothing again.
            assert conn.execute(text("SELECT count(*) FROM datasets")).scalar() == 0
    finally:
        engine.dispose()


def test_sessions_carry_their_tenant_across_commits(
    client: TestClient, postgres_urls: PostgresUrls, two_tenants: tuple[Tenant, Tenant]
) -> None:
    urls = postgres_urls
    a, _b = two_tenants
    settings = make_settings(client.app.state.context.settings.data_dir, database_url=urls.app)  # type: ignore[attr-defined]
    database = Database(settings)
    try:
        with database.session() as session:
            assert session.execute(text("SELECT count(*) FROM datasets")).scalar() == 0
            bind_tenant(session, TenantScope(a.id))
            assert session.execute(text("SELECT count(*) FROM datasets")).scalar() == 2
            session.commit()  # a new transaction: the after_begin hook sets the tenant again
            assert session.execute(text("SELECT count(*) FROM datasets")).scalar() == 2
            bind_platform(session)
            assert session.execute(text("SELECT count(*) FROM datasets")).scalar() == 3
    finally:
        database.dispose()


def test_a_platform_block_cut_off_from_the_database_fails_with_the_outage(
    client: TestClient, postgres_urls: PostgresUrls, two_tenants: tuple[Tenant, Tenant]
) -> None:
    """A platform query whose connection dies raises the database's error (which jobs retry), not the
    PendingRollbackError of restoring the tenant on the dead transaction; after the rollback the session is back
    on its tenant."""
    a, _b = two_tenants
    settings = make_settings(client.app.state.context.settings.data_dir, database_url=postgres_urls.app)  # type: ignore[attr-defined]
    database = Database(settings)
    admin_url = make_url(postgres_urls.admin).set(drivername="postgresql").render_as_string(hide_password=False)

    def count_all_after_losing_the_connection(session: Session) -> None:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
        with platform_access(session):
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            session.execute(text("SELECT count(*) FROM datasets"))

    try:
        with database.session() as session:
            bind_tenant(session, TenantScope(a.id))
            with pytest.raises(OperationalError):
                count_all_after_losing_the_connection(session)
            session.rollback()
            assert session.execute(text("SELECT count(*) FROM datasets")).scalar() == 2
    finally:
        database.dispose()


def test_tables_force_rls_and_the_app_role_owns_nothing(client: TestClient, postgres_urls: PostgresUrls) -> None:
    urls = postgres_urls
    server = make_url(urls.admin).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(server) as conn:
        rows = conn.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner) FROM pg_class"
            " WHERE relname = ANY(%s) AND relkind = 'r'",
            (list(TENANT_TABLES),),
        ).fetchall()
    assert {r[0] for r in rows} == set(TENANT_TABLES)
    assert all(r[1] and r[2] for r in rows)
    assert all(r[3] != urls.role for r in rows)
