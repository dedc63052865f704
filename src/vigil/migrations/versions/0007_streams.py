"""streams: streams, their write-ahead log of batches, state snapshots, flagged events and drift events

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 01:00:00

The new tables are tenant-owned, so on PostgreSQL they get the same row-level-security policy as migration 0004's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vigil.core.database

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ("streams", "stream_batches", "stream_snapshots", "stream_anomalies", "stream_drifts")
POLICY = "tenant_isolation"
RULE = "(tenant_id = current_setting('vigil.tenant_id', true) OR current_setting('vigil.tenant_id', true) = '*')"
UTC = vigil.core.database.UTCDateTime(timezone=True)


def _tenant() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("tenant_id", sa.String(length=32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)


def _stream(primary_key: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "stream_id",
        sa.String(length=32),
        sa.ForeignKey("streams.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "streams",
        sa.Column("id", sa.String(length=32), primary_key=True),
        _tenant(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("algorithm", sa.String(length=64), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("scaling", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.JSON(), nullable=False),
        sa.Column("warmup", sa.Integer(), nullable=False),
        sa.Column("drift_delta", sa.Float(), nullable=True),
        sa.Column("detector_id", sa.String(length=32), nullable=True),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("state_version", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=True),
        sa.Column("events_seen", sa.BigInteger(), nullable=False),
        sa.Column("anomaly_count", sa.BigInteger(), nullable=False),
        sa.Column("drift_count", sa.BigInteger(), nullable=False),
        sa.Column("current_threshold", sa.Float(), nullable=True),
        sa.Column("last_event_at", UTC, nullable=True),
        sa.Column("snapshot_version", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_events", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_at", UTC, nullable=True),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
    )
    op.create_index("ix_streams_tenant_id", "streams", ["tenant_id"])
    op.create_table(
        "stream_batches",
        _stream(primary_key=True),
        sa.Column("state_version", sa.BigInteger(), primary_key=True, autoincrement=False),
        _tenant(),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("n_events", sa.Integer(), nullable=False),
        sa.Column("n_anomalies", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", UTC, nullable=False),
    )
    op.create_index("ix_stream_batches_tenant_id", "stream_batches", ["tenant_id"])
    op.create_table(
        "stream_snapshots",
        _stream(primary_key=True),
        sa.Column("state_version", sa.BigInteger(), primary_key=True, autoincrement=False),
        _tenant(),
        sa.Column("last_seq", sa.BigInteger(), nullable=True),
        sa.Column("events_seen", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_index("ix_stream_snapshots_tenant_id", "stream_snapshots", ["tenant_id"])
    for table in ("stream_anomalies", "stream_drifts"):
        columns: list[sa.Column] = (  # type: ignore[type-arg]
            [
                sa.Column("score", sa.Float(), nullable=False),
                sa.Column("threshold", sa.Float(), nullable=True),
                sa.Column("values", sa.JSON(), nullable=False),
            ]
            if table == "stream_anomalies"
            else [
                sa.Column("detector", sa.String(length=32), nullable=False),
                sa.Column("details", sa.JSON(), nullable=False),
            ]
        )
        op.create_table(
            table,
            sa.Column("id", sa.String(length=32), primary_key=True),
            _tenant(),
            _stream(),
            sa.Column("seq", sa.BigInteger(), nullable=False),
            *columns,
            sa.Column("created_at", UTC, nullable=False),
        )
        op.create_index(f"ix_{table}_tenant_id", table, ["tenant_id"])
        op.create_index(f"ix_{table}_stream_seq", table, ["stream_id", "seq"])
    if op.get_bind().dialect.name == "postgresql":
        for table in TENANT_TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(f"CREATE POLICY {POLICY} ON {table} USING {RULE} WITH CHECK {RULE}")


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        op.drop_table(table)  # its policy and indexes go with it
