"""model versions: the size of each stored artifact, so a tenant's models count toward its storage quota

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 05:55:00

Versions stored before this revision count as 0 bytes (their artifacts are not re-read to measure them).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("size_bytes", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("size_bytes")
