"""A private PostgreSQL server the disaster-recovery suite may crash: its own data directory and port, started
from the machine's PostgreSQL binaries (`initdb`, `postgres`), owned by this run — never the shared server.

It runs in a session (process group) of its own, so `crash()` SIGKILLs the postmaster *and* its backends at once,
as a power cut of that server would; `start()` then runs PostgreSQL's own crash recovery (WAL replay)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from vigil_validation.targets import TargetUnreachable, free_port, log_tail

PG_ROOT = Path("/usr/lib/postgresql")
BIN_GLOB = "*/bin"
READY_TIMEOUT_S = 60.0


def find_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory (`initdb` and `postgres` in it), or None."""
    candidates = sorted(
        (p for p in PG_ROOT.glob(BIN_GLOB) if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_postgres_user() -> dict[str, Any]:
    """initdb and postgres refuse to run as root: as root, run them as the `postgres` system user."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres"}


class PrivatePostgres:
    """`url` is a superuser URL (`postgresql+psycopg://postgres@127.0.0.1:<port>/postgres`, trust auth on
    loopback only)."""

    def __init__(self, root: Path, binaries: Path) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.binaries = binaries
        self.port = free_port()
        self.log_path = root / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        kwargs = _as_postgres_user()
        if kwargs:
            shutil.chown(self.root, "postgres", "postgres")
        command = [
            str(self.binaries / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8", "--locale", "C",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, check=False, **kwargs)  # noqa: S603
        if result.returncode != 0:
            raise TargetUnreachable(f"initdb failed: {result.stderr.decode(errors='replace')[-2000:]}")

    def start(self) -> None:
        """Starts the server (after a crash: with WAL recovery) and waits until it accepts connections."""
        command = [
            str(self.binaries / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
            "-c", "max_connections=60", "-c", "shared_buffers=16MB", "-c", "fsync=on",
            "-c", "synchronous_commit=on", "-c", "logging_collector=off",
        ]  # fmt: skip
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            command, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, **_as_postgres_user()
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        import psycopg  # noqa: PLC0415 - only PostgreSQL runs need it

        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TargetUnreachable(f"the private PostgreSQL exited:\n{log_tail(self.log_path)}")
            try:
                with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.2)
        raise TargetUnreachable(f"the private PostgreSQL was not ready in {READY_TIMEOUT_S:g}s")

    def crash(self) -> None:
        """SIGKILL to the postmaster and every backend at once: no checkpoint, no clean shutdown."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None
        self._close_log()

    def stop(self) -> None:
        """A fast, clean shutdown (SIGINT: abort transactions, checkpoint, exit)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.crash()
            return
        self.process = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh private server, started; stopped and its directory removed afterwards."""
    binaries = find_binaries()
    if binaries is None:
        raise TargetUnreachable(f"no PostgreSQL binaries (initdb) under {PG_ROOT} or on PATH")
    root = Path(tempfile.mkdtemp(prefix="vigil-dr-postgres-"))
    server = PrivatePostgres(root, binaries)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
