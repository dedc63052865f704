"""A database on a SQLite file holding one table `t` with one row (x = 1): what the quick-read tests read."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from tests.conftest import make_settings
from vigil.core.database import Database


def one_table_database(data_dir: Path) -> Database:
    built = Database(make_settings(data_dir))
    with built.engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    built.engine.dispose()  # no connection left open: a test may lock the file for itself
    return built
