"""The private PostgreSQL the disaster-recovery suite may crash: a SIGKILL of its whole process group loses no
committed row (WAL recovery on restart), and the shared server is never touched."""

from __future__ import annotations

import pytest

from vigil_validation.faults.postgres import find_binaries, private_postgres

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.skipif(find_binaries() is None, reason="no PostgreSQL binaries (initdb) on this machine")


def test_a_crash_keeps_every_committed_row_and_loses_the_uncommitted() -> None:
    with private_postgres() as server:
        assert server.port != 5432
        conninfo = server.url.replace("+psycopg", "")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t SELECT generate_series(1, 100)")
        open_tx = psycopg.connect(conninfo)
        open_tx.execute("INSERT INTO t VALUES (-1)")  # never committed
        server.crash()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(conninfo, connect_timeout=2)
        server.start()
        with psycopg.connect(conninfo) as conn:
            rows = conn.execute("SELECT count(*), min(x) FROM t").fetchone()
        assert rows == (100, 1)
        open_tx.close()
