"""The database's own wall (PostgreSQL): connected as the server's application role, a query with no tenant filter
sees only the tenant named by the transaction setting, and nothing without one. Managed PostgreSQL targets only:
SQLite has no row-level security, and a remote target's database is not ours to connect to."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vigil_validation import handover
from vigil_validation.plugin import ProvisionedTenant


def _app_conninfo() -> str:
    target = handover.target_from_env()
    if target.kind not in ("managed", "cluster"):
        pytest.skip("row-level security is checked on a managed PostgreSQL target (a remote database is not ours)")
    if not target.database_app_url:
        pytest.skip("row-level security exists on PostgreSQL only; this target runs on SQLite")
    return target.database_app_url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.mark.managed_only
def test_rls_alone_blocks_cross_tenant_reads(
    tenant_factory: Callable[[], ProvisionedTenant], record: Callable[..., None]
) -> None:
    conninfo = _app_conninfo()
    import psycopg  # noqa: PLC0415 - only this check needs a driver

    a, b = tenant_factory(), tenant_factory()
    a.analyst.datasets.upload(b"x\n1\n", name="rls-a")
    b_dataset = b.analyst.datasets.upload(b"x\n1\n", name="rls-b")
    with psycopg.connect(conninfo) as conn:
        super_, bypass = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone() or (True, True)
        assert not super_, "the server's role must not be a superuser (superusers skip row-level security)"
        assert not bypass, "the server's role must not have BYPASSRLS"
        nothing = conn.execute("SELECT count(*) FROM datasets").fetchone()
        assert nothing == (0,), "without a tenant setting the application role must see no rows"
        conn.execute("SELECT set_config('vigil.tenant_id', %s, true)", (b.id,))
        rows = conn.execute("SELECT id, tenant_id FROM datasets").fetchall()  # no WHERE clause
        assert rows == [(b_dataset["id"], b.id)], f"tenant B's setting shows {rows}"
        changed = conn.execute("UPDATE datasets SET name = 'x' WHERE tenant_id = %s", (a.id,)).rowcount
        assert changed == 0
        conn.rollback()
    record("rls_rows_visible_to_b", len(rows))
