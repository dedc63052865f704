"""row-level security: every tenant-owned table admits only the transaction's tenant (PostgreSQL only)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 13:30:00

Each policy admits a row when its `tenant_id` equals the transaction setting `vigil.tenant_id`, or when the
setting is `*` (platform access: login, the superadmin's tenant management, job claiming). With no setting a
query sees nothing. `FORCE` makes the table owner obey the policies too; only superusers and BYPASSRLS roles
skip them, which is why the application must not connect as one (docs/operations.md, "PostgreSQL roles").
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
)
POLICY = "tenant_isolation"
RULE = "(tenant_id = current_setting('vigil.tenant_id', true) OR current_setting('vigil.tenant_id', true) = '*')"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {POLICY} ON {table} USING {RULE} WITH CHECK {RULE}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
