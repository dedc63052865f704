"""The deployment a disaster-recovery scenario breaks: a `vigil serve` of its own (SQLite, or PostgreSQL on a
private server it may crash), with every connection to PostgreSQL and Redis going through a fault proxy link.

It is separate from the session's target on purpose: a scenario kills and cuts things, and the other suites'
tests running beside it must not feel it."""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vigil.client import NO_RETRY, VigilClient
from vigil_validation.faults import FaultProxy, Link, through_link, upstream_of
from vigil_validation.faults.postgres import PrivatePostgres, private_postgres
from vigil_validation.faults.server import VigilProcess
from vigil_validation.suites.disaster_recovery.checker import BlobAudit
from vigil_validation.targets import _server_env, fresh_postgres_database

Database = Literal["sqlite", "postgresql"]


@dataclass
class Deployment:
    database: Database
    api: VigilProcess
    proxy: FaultProxy
    admin_email: str
    admin_password: str
    log_dir: Path
    postgres: PrivatePostgres | None = None
    links: dict[str, Link] = field(default_factory=dict)
    # Every client handed out, closed with the deployment: a prober's client whose request a fault cut would
    # otherwise be collected with its socket open (an unraisable ResourceWarning, an error in this suite).
    clients: list[VigilClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.api.url

    def client(self, *, timeout: float = 10.0) -> VigilClient:
        # No retries: the checker and the prober must see what each single request got.
        client = VigilClient(self.url, timeout=timeout, retry=NO_RETRY)
        self.clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()

    def admin(self, *, timeout: float = 10.0) -> VigilClient:
        client = self.client(timeout=timeout)
        client.login(self.admin_email, self.admin_password)
        return client

    def audit_blobs(self) -> BlobAudit:
        """Sweeps the orphan blobs with no grace, then checks that none is left and every row has its blob: the
        operator's own command, on the server's settings (call it with no writer running: no grace spares one)."""
        swept = self._sweep_blobs("--verify")
        left = self._sweep_blobs("--dry-run")
        totals = re.search(r"(?:deleted|would delete) (\d+) orphan\(s\), (\d+) bytes", swept.stdout)
        remaining = re.search(r"would delete (\d+) orphan\(s\)", left.stdout)
        if totals is None or remaining is None or left.returncode != 0 or swept.returncode not in (0, 1):
            raise RuntimeError(f"vigil admin sweep-blobs failed:\n{swept.stdout}{swept.stderr}{left.stderr}")
        missing = [line.split()[1] for line in swept.stdout.splitlines() if line.startswith("missing: ")]
        return BlobAudit(swept=int(totals[1]), swept_bytes=int(totals[2]), left=int(remaining[1]), missing=missing)

    def _sweep_blobs(self, *options: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "vigil", "admin", "sweep-blobs", "--grace-s", "0", "--quiet", *options]
        return subprocess.run(argv, env=self.api.env, capture_output=True, text=True, timeout=300, check=False)


@contextlib.contextmanager
def deployment(
    *,
    database: Database,
    log_dir: Path,
    redis_url: str | None = None,
    server_env: dict[str, str] | None = None,
) -> Iterator[Deployment]:
    """Starts the deployment and yields it once `/ready`; tears everything down afterwards."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        proxy = stack.enter_context(FaultProxy())
        links: dict[str, Link] = {}
        pg = None
        db = None
        if database == "postgresql":
            pg = stack.enter_context(private_postgres())
            made = stack.enter_context(fresh_postgres_database(pg.url))
            links["database"] = proxy.add_link("database", "127.0.0.1", pg.port)
            db = type(made)(
                admin_url=through_link(made.admin_url, links["database"]),
                app_url=through_link(made.app_url, links["database"]),
                role=made.role,
            )
        proxied_redis = None
        if redis_url is not None:
            links["redis"] = proxy.add_link("redis", *upstream_of(redis_url, 6379))
            proxied_redis = through_link(redis_url, links["redis"])
        data_dir = Path(tempfile.mkdtemp(prefix="vigil-dr-"))
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        email = f"dr-admin-{uuid.uuid4().hex[:8]}@example.com"
        password = " ".join(secrets.token_hex(4) for _ in range(6))
        env = _server_env(
            data_dir,
            email=email,
            password=password,
            secret_key=secrets.token_urlsafe(48),
            database=db,
            redis_url=proxied_redis,
            extra=server_env or {},
        )
        api = VigilProcess("serve", env, log_dir / "api.log")
        stack.callback(api.stop)
        api.start()
        made_deployment = Deployment(
            database=database,
            api=api,
            proxy=proxy,
            admin_email=email,
            admin_password=password,
            log_dir=log_dir,
            postgres=pg,
            links=links,
        )
        stack.callback(made_deployment.close_clients)
        yield made_deployment


ClientFactory = Callable[[], VigilClient]
