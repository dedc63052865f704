"""Alembic environment: migrates the connection it is handed, or the URL in its config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from vigil.core import idempotency  # noqa: F401 - registers its table
from vigil.core.database import Base
from vigil.datasets import models as _datasets  # noqa: F401
from vigil.detectors import models as _detectors  # noqa: F401
from vigil.identity import models as _identity  # noqa: F401
from vigil.jobs import models as _jobs  # noqa: F401
from vigil.streams import models as _streams  # noqa: F401

target_metadata = Base.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _migrate(conn)


def _migrate(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
