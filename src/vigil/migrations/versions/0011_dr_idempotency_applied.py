"""idempotency records: marked applied in the write's own transaction, with how to rebuild the answer

Revision ID: 0011_dr
Revises: 0010
Create Date: 2026-11-29 07:40:00

A request that committed its write and died before its answer was recorded left a claim that a retry took over and
ran again (a second dataset, a second detector). The record is now marked applied in the write's transaction, with
the status and location its answer is rebuilt from, so a retry reads the result back instead of writing again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vigil.core.database

revision: str = "0011_dr"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.add_column(sa.Column("applied_at", vigil.core.database.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("answer_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("answer_location", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_column("answer_location")
        batch.drop_column("answer_status")
        batch.drop_column("applied_at")
