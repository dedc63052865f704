"""Quick reads (`core/quick_reads.py`): a read-only SQLite connection that never waits for a lock, lent to the
sessions of a database on a SQLite file (and only there), acting for the same caller as the session it stands in for."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from tests.conftest import make_settings
from tests.support.one_table import one_table_database
from vigil.core.database import Database, TenantScope, bind_tenant, current_access
from vigil.core.quick_reads import QuickReads, is_contention, quick_reads_for


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    built = one_table_database(tmp_path / "data")
    yield built
    built.dispose()


def _quick(database: Database) -> QuickReads:
    with database.sessions() as session:
        reads = quick_reads_for(session)
    assert reads is not None
    return reads


def test_a_sqlite_file_lends_quick_reads_to_its_sessions_that_act_for_the_same_caller(database: Database) -> None:
    with database.sessions() as session:
        bind_tenant(session, TenantScope("ten_a"))
        with _quick(database).session_like(session) as quick:
            assert current_access(quick) == "ten_a"
            assert quick.execute(text("SELECT x FROM t")).scalar_one() == 1


def test_the_quick_connection_never_waits_for_a_lock(database: Database) -> None:
    """A writer in exclusive locking mode keeps readers out even in WAL mode: the quick read is refused at once
    (no busy timeout), and the refusal reads as contention, which the caller retries where waiting is harmless."""
    assert database.engine.url.database is not None
    database.engine.dispose()  # exclusive mode needs the file to itself when it begins
    holder = sqlite3.connect(database.engine.url.database, timeout=0)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO t VALUES (2)")
        holder.commit()  # exclusive mode: the lock stays held after the commit
        with database.sessions() as session, _quick(database).session_like(session) as quick:
            assert quick.execute(text("PRAGMA busy_timeout")).scalar_one() == 0
            with pytest.raises(OperationalError) as refused:
                quick.execute(text("SELECT x FROM t")).all()
            assert is_contention(refused.value)
    finally:
        holder.close()


def test_the_quick_connection_cannot_write(database: Database) -> None:
    """It can never take the write lock, nor wait for it; a write is an error of the caller's, not contention."""
    with database.sessions() as session, _quick(database).session_like(session) as quick:
        with pytest.raises(OperationalError) as refused:
            quick.execute(text("INSERT INTO t VALUES (3)"))
        assert not is_contention(refused.value)
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 1


def test_an_in_memory_database_lends_none(tmp_path: Path) -> None:
    """A second connection to `:memory:` is another, empty database: such sessions read where they are."""
    memory = Database(make_settings(tmp_path / "data", database_url="sqlite:///:memory:"))
    try:
        with memory.sessions() as session:
            assert quick_reads_for(session) is None
    finally:
        memory.dispose()
