"""A real `vigil serve` process for crash tests: started on a fixed port and data directory, killed with SIGKILL,
started again on the same data — what a crashed and restarted deployment looks like."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from tests.client.live_server import free_port
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from vigil.config import Settings


class ServerProcess:
    def __init__(self, settings: Settings, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = settings.data_dir.parent / "server.log"
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "VIGIL_DATA_DIR": str(settings.data_dir),
            "VIGIL_ENVIRONMENT": "test",
            "VIGIL_SECRET_KEY": "crash-test-secret-key-long-enough-0123456789",
            "VIGIL_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
            "VIGIL_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "VIGIL_ARGON2_TIME_COST": "1",
            "VIGIL_ARGON2_MEMORY_KIB": "1024",
            "VIGIL_LOG_LEVEL": "WARNING",
            "VIGIL_JOB_WORKERS": "1",
            **env,
        }
        if not settings.is_sqlite:
            self.env["VIGIL_DATABASE_URL"] = settings.database_url_resolved
            self.env["VIGIL_DATABASE_ADMIN_URL"] = settings.database_admin_url_resolved
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vigil", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not become ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed by the server on its way out."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
