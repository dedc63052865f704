"""SQLite has one writer at a time: a write transaction that holds the lock long makes every other writer wait, and
past the busy timeout answer 503. Such a holder is logged when it ends, with its first write, so it can be found."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from vigil.core import database
from vigil.core.database import build_engine


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setattr(database, "SLOW_WRITE_S", 0.0)  # every write transaction is "slow": no waiting in tests
    built = build_engine(make_settings(tmp_path / "data"))
    with built.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    return built


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "vigil.database" and r.levelno == logging.WARNING]


@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
def test_a_write_transaction_held_too_long_is_logged_with_its_first_write(
    engine: Engine, caplog: pytest.LogCaptureFixture, end: str
) -> None:
    with caplog.at_level(logging.WARNING, "vigil.database"), Session(engine) as session:
        session.execute(text("SELECT count(*) FROM t"))
        session.execute(text("INSERT INTO t VALUES (1)"))
        session.execute(text("INSERT INTO t VALUES (2)"))
        getattr(session, end)()
    [warning] = _warnings(caplog)
    assert "held the SQLite database" in warning
    assert "INSERT INTO t VALUES (1)" in warning


def test_reads_are_not_writes_and_each_transaction_is_timed_on_its_own(
    engine: Engine, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with caplog.at_level(logging.WARNING, "vigil.database"), Session(engine) as session:
        session.execute(text("SELECT count(*) FROM t"))
        session.commit()
        assert _warnings(caplog) == []
        session.execute(text("INSERT INTO t VALUES (1)"))
        session.commit()
        monkeypatch.setattr(database, "SLOW_WRITE_S", 3600.0)
        session.execute(text("INSERT INTO t VALUES (2)"))
        session.commit()
    assert len(_warnings(caplog)) == 1
