"""Acknowledged means durable: every SQLite connection the app opens commits with synchronous=FULL in WAL mode
(an fsync of the WAL at each commit, so a power cut after the answer loses nothing)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from tests.conftest import make_settings
from vigil.core.database import build_engine

FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


def test_sqlite_commits_are_fsynced(tmp_path: Path) -> None:
    engine = build_engine(make_settings(tmp_path / "data"))
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA synchronous")).scalar() == FULL
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        engine.dispose()
