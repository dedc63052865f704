"""Targets: a **managed** server the suite starts itself (SQLite or a fresh PostgreSQL database), or a **remote**
deployment given by URL. Either way the suite gets a base URL and superadmin credentials, nothing more."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

TargetKind = Literal["managed", "remote", "cluster"]
READY_POLL_S = 0.2
STOP_GRACE_S = 15.0
LOG_TAIL_LINES = 40


class TargetUnreachable(Exception):
    """The target did not answer (or its database server did not): nothing can be validated."""


@dataclass(frozen=True)
class Target:
    """What the tests get: where the server is, how to log in as its superadmin, and what kind it is."""

    url: str
    kind: TargetKind
    admin_email: str
    admin_password: str
    description: str
    database: str = "unknown"
    server_log: str | None = None
    data_dir: str | None = None
    # A managed server's token-signing key, so the security suite can forge validly signed tokens whose claims
    # alone are wrong; never known for a remote target, and never written to a report.
    signing_key: str | None = None
    # A managed PostgreSQL server's own application-role URL, so the multi-tenant suite can show that row-level
    # security alone keeps tenants apart; never known for a remote target, and never written to a report.
    database_app_url: str | None = None
    # A cluster's API processes: the suite's clients spread their requests over all of them (`url` is the first).
    api_urls: tuple[str, ...] = ()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, *, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Polls `GET /ready` until 200; raises `TargetUnreachable` on timeout or if the process exits first."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=5.0) as http:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise TargetUnreachable(f"the server exited with code {process.returncode} before it was ready")
            try:
                response = http.get(f"{url}/ready")
                if response.status_code == 200:
                    return
                last = f"GET /ready answered {response.status_code}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(READY_POLL_S)
    raise TargetUnreachable(f"{url} was not ready within {timeout:g}s ({last})")


def remote_target(url: str, *, email: str, password: str, timeout: float) -> Target:
    """A live deployment: it must answer `/ready` (else `TargetUnreachable`)."""
    wait_ready(url, timeout=timeout)
    return Target(
        url=url,
        kind="remote",
        admin_email=email,
        admin_password=password,
        description=f"remote deployment at {url}",
        database="unknown (remote)",
    )


# -- PostgreSQL: one fresh database per managed run ---------------------------------------------------------
def _psycopg_conninfo(url: str) -> str:
    """SQLAlchemy-style `postgresql+psycopg://…` as the plain URI libpq understands."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@dataclass(frozen=True)
class PostgresDatabase:
    """A fresh database: `admin_url` (the owner, who migrates it) and `app_url`, a login role made for this run
    that owns nothing and is no superuser — so the server runs under row-level security, as it should in
    production."""

    admin_url: str
    app_url: str
    role: str


# What the application role needs (the operator's `vigil db create-app-role` does the same).
_GRANTS = (
    'GRANT CONNECT ON DATABASE "{db}" TO "{role}"',
    'GRANT USAGE ON SCHEMA public TO "{role}"',
    'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"',
    'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "{role}"',
)


def _with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


@contextlib.contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[PostgresDatabase]:
    """Creates a uniquely named database and a login role for the app on the server at `server_url`, yields
    them, and drops both afterwards."""
    import psycopg  # noqa: PLC0415 - only the PostgreSQL target needs it

    suffix = uuid.uuid4().hex[:12]
    name, role, role_password = f"vigil_validation_{suffix}", f"vigil_validation_app_{suffix}", secrets.token_hex(16)
    conninfo = _psycopg_conninfo(server_url)
    if not urlsplit(server_url).path.strip("/"):
        conninfo = _psycopg_conninfo(_with_database(server_url, "postgres"))
    admin_url = _with_database(server_url, name)
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
            admin.execute(f"CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{role_password}'")
        with psycopg.connect(_psycopg_conninfo(admin_url), autocommit=True, connect_timeout=5) as owner:
            for grant in _GRANTS:
                owner.execute(grant.format(db=name, role=role))
    except psycopg.Error as exc:
        _drop_database_and_role(conninfo, name, role)
        raise TargetUnreachable(f"PostgreSQL at {_redacted(server_url)}: {str(exc).strip()}") from exc
    try:
        yield PostgresDatabase(admin_url=admin_url, app_url=_with_user(admin_url, role, role_password), role=role)
    finally:
        _drop_database_and_role(conninfo, name, role)


def _drop_database_and_role(conninfo: str, name: str, role: str) -> None:
    import psycopg  # noqa: PLC0415

    with contextlib.suppress(psycopg.Error), psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')


# -- the managed server -----------------------------------------------------------------------------------
def _server_env(
    data_dir: Path,
    *,
    email: str,
    password: str,
    secret_key: str,
    database: PostgresDatabase | None,
    redis_url: str | None,
    extra: dict[str, str],
) -> dict[str, str]:
    # The operator's own VIGIL_* settings must not leak into the server under test: it gets exactly these.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update(
        {
            "VIGIL_DATA_DIR": str(data_dir),
            "VIGIL_SECRET_KEY": secret_key,
            "VIGIL_BOOTSTRAP_ADMIN_EMAIL": email,
            "VIGIL_BOOTSTRAP_ADMIN_PASSWORD": password,
            "VIGIL_ENVIRONMENT": "test",
            "VIGIL_LOG_LEVEL": "WARNING",
            "VIGIL_LOG_JSON": "true",
            "PYTHONUNBUFFERED": "1",
            # The suite stands in for clients at other addresses (X-Forwarded-For) to test per-IP defences.
            "VIGIL_TRUSTED_PROXIES": '["127.0.0.1/32"]',
        }
    )
    if database is not None:
        env["VIGIL_DATABASE_URL"] = database.app_url
        env["VIGIL_DATABASE_ADMIN_URL"] = database.admin_url
    if redis_url is not None:
        env["VIGIL_REDIS_URL"] = redis_url
        # Its own keys on a shared Redis: runs side by side never share counters.
        env["VIGIL_RATE_LIMIT_KEY_PREFIX"] = f"vigil-validation-{uuid.uuid4().hex[:12]}:"
    env.update(extra)
    return env


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def stop_process(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_S) -> None:
    """Terminate (graceful shutdown), then kill if it does not exit in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)


@contextlib.contextmanager
def managed_target(
    *,
    report_dir: Path,
    database_url: str | None = None,
    redis_url: str | None = None,
    startup_timeout: float = 60.0,
    keep_data: bool = False,
    server_env: dict[str, str] | None = None,
) -> Iterator[Target]:
    """Starts `python -m vigil serve` on a free port with a fresh data directory (and database), yields it
    once ready, and stops it (and drops its database) afterwards — whatever happened in between."""
    with contextlib.ExitStack() as stack:
        database = "SQLite (in the data directory)"
        server_db: PostgresDatabase | None = None
        if database_url is not None:
            server_db = stack.enter_context(fresh_postgres_database(database_url))
            database = f"PostgreSQL {_redacted(server_db.app_url)} (role {server_db.role}, row-level security)"
        data_dir = Path(tempfile.mkdtemp(prefix="vigil-validation-"))
        if not keep_data:
            stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        email = f"validation-admin-{uuid.uuid4().hex[:8]}@example.com"
        password = " ".join(secrets.token_hex(4) for _ in range(6))  # a 53-character passphrase
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        report_dir.mkdir(parents=True, exist_ok=True)
        log_path = report_dir / "server.log"
        log: IO[bytes] = stack.enter_context(log_path.open("wb"))
        secret_key = secrets.token_urlsafe(48)
        env = _server_env(
            data_dir,
            email=email,
            password=password,
            secret_key=secret_key,
            database=server_db,
            redis_url=redis_url,
            extra=server_env or {},
        )
        command = [sys.executable, "-m", "vigil", "serve", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        stack.callback(stop_process, process)
        try:
            wait_ready(url, timeout=startup_timeout, process=process)
        except TargetUnreachable as exc:
            log.flush()
            raise TargetUnreachable(f"{exc}\n--- last lines of {log_path} ---\n{log_tail(log_path)}") from exc
        yield Target(
            url=url,
            kind="managed",
            admin_email=email,
            admin_password=password,
            description=f"managed `vigil serve` at {url} on {database}",
            database=database,
            server_log=str(log_path),
            data_dir=str(data_dir),
            signing_key=env["VIGIL_SECRET_KEY"],
            database_app_url=server_db.app_url if server_db is not None else None,
        )
