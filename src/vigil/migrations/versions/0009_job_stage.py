"""jobs: the stage a running job is in (what its progress is progress of)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 04:10:00

A short label the handler reports with its progress ("fitting", "scoring") so a waiting user sees what the job is
doing, not only how far along it is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("stage")
