"""jobs scale out: attempts limit, outbox and lease columns, executor nodes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00

`dispatched_at` is the outbox marker (NULL: not yet published to the broker); `queued_at` starts the wait a job
reports; `worker_pid` and `task_id` say which process and which broker message run it (cancel terminates that
process); `max_attempts` and `last_error` make a poison job fail with the reason of its last lost attempt;
`parts_total`/`parts_done` count the partitions of fanned-out work. `job_workers` lists the executor nodes and
their heartbeats (platform data: no tenant, no row-level security).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vigil.core.database

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = vigil.core.database.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="3"))
        batch_op.add_column(sa.Column("worker_pid", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("task_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("queued_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("dispatched_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("run_seconds", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("parts_total", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("parts_done", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_error", sa.JSON(), nullable=True))
        batch_op.create_index("ix_jobs_status_dispatched_at", ["status", "dispatched_at"], unique=False)
        batch_op.create_index("ix_jobs_worker_id_status", ["worker_id", "status"], unique=False)
        batch_op.create_index("ix_jobs_tenant_id_status", ["tenant_id", "status"], unique=False)
    op.execute("UPDATE jobs SET queued_at = created_at")
    op.create_table(
        "job_workers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("heartbeat_at", UTC, nullable=False),
        sa.Column("stopped_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("job_workers")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_tenant_id_status")
        batch_op.drop_index("ix_jobs_worker_id_status")
        batch_op.drop_index("ix_jobs_status_dispatched_at")
        for column in (
            "last_error",
            "parts_done",
            "parts_total",
            "run_seconds",
            "dispatched_at",
            "queued_at",
            "task_id",
            "worker_pid",
            "max_attempts",
        ):
            batch_op.drop_column(column)
