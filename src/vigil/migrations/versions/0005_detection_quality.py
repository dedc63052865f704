"""detection quality: feedback labels, judged model versions, thresholds and promotion history

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:00:00

`feedback_labels` holds analysts' labels of dataset rows (anomaly = 1, normal = 0) per detector; like every
tenant-owned table it gets the tenant-isolation policy of 0004 on PostgreSQL. Model versions gain what a user
needs to judge them (dataset, preprocessing, training time, threshold rule, measured quality, provenance);
detectors gain their threshold rule and the stack of versions that were active before (for rollback).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vigil.core.database

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY = "tenant_isolation"
RULE = "(tenant_id = current_setting('vigil.tenant_id', true) OR current_setting('vigil.tenant_id', true) = '*')"


def _version_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("dataset", sa.JSON(), nullable=True),
        sa.Column("preprocessing", sa.JSON(), nullable=True),
        sa.Column("contamination", sa.Float(), nullable=True),
        sa.Column("threshold_rule", sa.JSON(), nullable=True),
        sa.Column("training_seconds", sa.Float(), nullable=True),
        sa.Column("labels_used", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("origin", sa.JSON(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "feedback_labels",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("detector_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("row_index", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.SmallInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", vigil.core.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["detector_id"], ["detectors.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("detector_id", "dataset_id", "row_index"),
        sa.CheckConstraint("label IN (0, 1)", name="ck_feedback_labels_label"),
        sa.CheckConstraint("row_index >= 0", name="ck_feedback_labels_row_index"),
    )
    with op.batch_alter_table("feedback_labels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_labels_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_labels_dataset_id"), ["dataset_id"], unique=False)
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        for column in _version_columns():
            batch_op.add_column(column)
    with op.batch_alter_table("detectors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("threshold_rule", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("previous_versions", sa.JSON(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE feedback_labels ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE feedback_labels FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {POLICY} ON feedback_labels USING {RULE} WITH CHECK {RULE}")


def downgrade() -> None:
    with op.batch_alter_table("detectors", schema=None) as batch_op:
        batch_op.drop_column("previous_versions")
        batch_op.drop_column("threshold_rule")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        for column in reversed(_version_columns()):
            batch_op.drop_column(column.name)
    op.drop_table("feedback_labels")
