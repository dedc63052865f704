"""A Vigil process (`vigil serve` or `vigil worker`) the suite started and may crash, freeze and restart — on the
same port, data directory and database, as a supervisor (systemd, Kubernetes) would restart it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import IO

from vigil_validation.faults.processes import kill, pause, resume
from vigil_validation.targets import TargetUnreachable, free_port, log_tail, stop_process, wait_ready


class VigilProcess:
    """`command` is `serve` (on a port of its own, kept across restarts) or `worker`. `restarts` counts them."""

    def __init__(self, command: str, env: dict[str, str], log_path: Path, *, ready_timeout: float = 180.0) -> None:
        self.command = command
        self.env = env
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.port = free_port() if command == "serve" else None
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise AttributeError("a worker has no URL")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, *, wait: bool = True) -> None:
        argv = [sys.executable, "-m", "vigil", self.command]
        if self.port is not None:
            argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        else:
            argv += ["--concurrency", "1", "--loglevel", "WARNING"]
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)  # noqa: S603
        if wait and self.port is not None:
            self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        try:
            wait_ready(self.url, timeout=timeout or self.ready_timeout, process=self.process)
        except TargetUnreachable as exc:
            raise TargetUnreachable(f"{exc}\n--- {self.log_path} ---\n{log_tail(self.log_path)}") from exc

    def crash(self) -> None:
        """SIGKILL: no shutdown hook, no flush — what a power cut or the OOM killer does."""
        if self.process is not None:
            kill(self.process)
        self._close_log()

    def freeze(self) -> None:
        if self.process is not None:
            pause(self.process)

    def thaw(self) -> None:
        if self.process is not None:
            resume(self.process)

    def restart(self, *, wait: bool = True) -> None:
        self.crash()
        self.restarts += 1
        self.start(wait=wait)

    def stop(self) -> None:
        if self.process is not None:
            resume(self.process)  # a frozen process cannot shut down
            stop_process(self.process)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
