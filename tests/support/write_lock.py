"""Whether SQLite's one write lock is free at a given moment: another connection tries to take it, without waiting."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def write_lock_is_free(database: Path) -> bool:
    probe = sqlite3.connect(database, timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.rollback()
        return True
    except sqlite3.OperationalError:  # "database is locked": a transaction holds the write lock
        return False
    finally:
        probe.close()
