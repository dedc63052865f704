"""Reads short enough to run where they are asked for (the event loop): SQLite only, on a read-only connection that
never waits for a lock.

Why: a list request's own database work is ~90 us, but handing it to a worker thread and back costs two thread
wake-ups, each waiting for a CPU on a loaded machine (docs/architecture.md, "Request overhead of a list"). Run on
the event loop, a read must never wait, so the connection it uses is made for that:

- `busy_timeout` 0: where a reader would wait for a lock (a rollback-journal writer, a WAL recovery, a writer in
  exclusive locking mode), SQLite answers `SQLITE_BUSY` at once. The caller then runs the same read in a worker
  thread on its ordinary session, which waits as every reader does (`is_contention`). In WAL mode, the mode every
  database here runs in, a reader does not wait for a writer at all: that is the common case, and the fast one;
- `query_only`: it cannot write, so it can never hold the one write lock (nor begin to wait for it);
- one connection per thread (`SingletonThreadPool`): the event loop's thread reuses its own, with no pool checkout
  that could wait, and two event loops in two threads (tests) never share one.

PostgreSQL reads go over the network and can wait on a server that stopped answering: they keep their worker
thread (`quick_reads_for` is None there). So does an in-memory SQLite database, which a second connection would not
see.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import SingletonThreadPool

QUICK_READS = "vigil.quick_reads"  # the key of a session's `info` under which its database lends its quick reads
# SQLite's primary result codes (an extended code keeps them in its low byte) that mean "another connection is in
# the way", never "this read is wrong": BUSY, LOCKED, and PROTOCOL (a WAL read that lost a race too many times).
_CONTENTION_CODES = frozenset({5, 6, 15})


class QuickReads:
    """Sessions for reads that must not wait: a read-only SQLite connection per thread, with no busy timeout."""

    def __init__(self, url: str) -> None:
        # `timeout` is the sqlite3 module's busy timeout, in seconds: 0 answers SQLITE_BUSY at once.
        self.engine = create_engine(
            url, poolclass=SingletonThreadPool, connect_args={"check_same_thread": False, "timeout": 0}
        )
        event.listen(self.engine, "connect", _read_only)
        self._sessions = sessionmaker(self.engine)

    def session_like(self, session: Session) -> Session:
        """A session on the quick connection that acts for the same caller as `session` (its tenant binding)."""
        quick = self._sessions()
        quick.info.update(session.info)
        return quick

    def dispose(self) -> None:
        self.engine.dispose()


def _read_only(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def quick_reads_for(session: Session) -> QuickReads | None:
    """The quick reads of the database `session` belongs to, or None (PostgreSQL, in-memory SQLite)."""
    reads = session.info.get(QUICK_READS)
    return reads if isinstance(reads, QuickReads) else None


def is_contention(exc: OperationalError) -> bool:
    """The read met another connection's lock (and, with no busy timeout, did not wait): retry it where waiting is
    harmless. Any other error is the read's own and is raised as it is."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _CONTENTION_CODES
