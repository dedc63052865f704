"""idempotency records: claims held under a renewable lease, pruned by housekeeping over an index

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 04:15:00

A claim names its owner (a token per request) and a lease the owner renews while its request runs, so a claim left by
a crashed process expires instead of blocking its key for a day; records are pruned by `created_at`, now indexed.
Existing unfinished claims have no lease: they count as abandoned at once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vigil.core.database

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", vigil.core.database.UTCDateTime(timezone=True), nullable=True))
    op.create_index("ix_idempotency_records_created_at", "idempotency_records", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_records_created_at", table_name="idempotency_records")
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("owner")
