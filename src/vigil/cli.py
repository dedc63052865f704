"""The `vigil` command: `serve` the platform, `db` migrations, `admin` tasks, `validate` a deployment — and, through
the SDK (`vigil.client.commands`), the data commands: `login`, `datasets`, `detectors`, `jobs`."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from vigil import __version__
from vigil.client import commands
from vigil.config import Settings

app = typer.Typer(
    help="Vigil: multi-tenant anomaly detection.", no_args_is_help=True, add_completion=False, rich_markup_mode=None
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
admin_app = typer.Typer(help="Operator tasks on this server's database.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
console = Console(stderr=True)
commands.register(app)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"vigil {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Vigil: multi-tenant anomaly detection — the server, its operator tasks, the data commands, the validation."""


def _settings(data_dir: Path | None) -> Settings:
    """The settings, or a readable refusal (exit code 2) naming each bad VIGIL_* value."""
    try:
        return Settings(data_dir=data_dir) if data_dir is not None else Settings()
    except ValidationError as exc:
        console.print("[bold red]invalid settings:[/]")
        for error in exc.errors():
            name = "VIGIL_" + "_".join(str(part) for part in error["loc"]).upper() if error["loc"] else "settings"
            console.print(f"  {name}: {error['msg']}")
        raise typer.Exit(2) from exc


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data directory (default: VIGIL_DATA_DIR or ./vigil-data).")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="API processes on this port (PostgreSQL only; Redis keeps limits shared).")
    ] = 1,
) -> None:
    """Run the API server (SQLite in the data directory unless VIGIL_DATABASE_URL says otherwise)."""
    settings = _settings(data_dir)  # before the heavy imports: a bad setting is refused at once
    import uvicorn

    from vigil.core.database import DatabaseInUse, claim_sqlite_file
    from vigil.core.secrets import MissingSecretError

    common = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        # Which X-Forwarded-For to believe is VIGIL_TRUSTED_PROXIES' decision alone, not uvicorn's default.
        "proxy_headers": False,
        # Stream WebSockets: protocol pings find dead peers; frames above the limit are refused by the app with a
        # problem frame, and anything far beyond it by the server before it is buffered.
        "ws_ping_interval": settings.stream_ws_ping_interval_s,
        "ws_ping_timeout": settings.stream_ws_ping_interval_s,
        "ws_max_size": 4 * settings.stream_max_frame_bytes,
    }
    if workers > 1:
        if settings.is_sqlite:
            console.print(
                "[bold red]refusing to start:[/] several API processes need PostgreSQL (VIGIL_DATABASE_URL); "
                "SQLite is one process's file."
            )
            raise typer.Exit(2)
        _listen(host, port).close()  # checked now; uvicorn's processes bind it again themselves
        if data_dir is not None:
            os.environ["VIGIL_DATA_DIR"] = str(data_dir)  # each worker process reads its settings afresh
        console.print(f"Vigil on http://{host}:{port} with {workers} processes (database: {_redacted(settings)})")
        uvicorn.run("vigil.app:create_app_from_environment", factory=True, workers=workers, **common)  # type: ignore[arg-type]
        return

    # The port before anything is written (a database migrated, a superadmin password shown) for a server that
    # could not have started; the server then serves on this very socket.
    listener = _listen(host, port)
    try:
        claim_sqlite_file(settings)  # before the app's heavy imports: a second process is refused at once
        from vigil.app import create_app

        application = create_app(settings)
    except (MissingSecretError, DatabaseInUse) as exc:
        listener.close()
        console.print(f"[bold red]refusing to start:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"Vigil on http://{host}:{port}  (data: {settings.data_dir}, database: {_redacted(settings)})")
    uvicorn.Server(uvicorn.Config(application, **common)).run(sockets=[listener])  # type: ignore[arg-type]


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, or a clear refusal (exit code 2) when it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no obstacle
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        console.print(
            f"[bold red]refusing to start:[/] cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(another port: --port N, or `make run PORT=N`)"
        )
        raise typer.Exit(2) from exc
    return listener


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Child processes (default: VIGIL_WORKER_CONCURRENCY or the cores).")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve this worker's Prometheus metrics on 127.0.0.1:PORT.")
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Celery's log level.")] = "INFO",
    data_dir: Annotated[Path | None, typer.Option(help="Local room for staged and cached blobs.")] = None,
) -> None:
    """Run a Celery worker that executes Vigil's jobs (needs VIGIL_BROKER_URL and PostgreSQL)."""
    # Celery's SIGTERM is a warm shutdown that waits for running jobs however long they take. Remapped, SIGTERM
    # is a cold shutdown that first gives running jobs VIGIL_WORKER_SHUTDOWN_GRACE_S (Celery's soft shutdown),
    # then hands them back. Read by billiard when it is imported, so it is set before anything imports it.
    os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")
    settings = _settings(data_dir)
    if settings.broker_url is None:
        console.print("[bold red]vigil worker needs a broker:[/] set VIGIL_BROKER_URL (amqp://… or redis://…).")
        raise typer.Exit(2)
    from vigil.app import build_context, build_lifecycle, import_libraries
    from vigil.core.logging import configure_logging
    from vigil.core.secrets import MissingSecretError
    from vigil.jobs.worker import WorkerOptions, run_worker

    configure_logging(level=settings.log_level, json=settings.log_json)
    try:
        context = build_context(settings)
    except MissingSecretError as exc:
        console.print(f"[bold red]refusing to start:[/] {exc}")
        raise typer.Exit(2) from exc
    options = WorkerOptions(
        concurrency=concurrency or settings.worker_concurrency or os.cpu_count() or 1,
        metrics_port=metrics_port,
        loglevel=loglevel,
        preload=import_libraries,
    )
    console.print(
        f"Vigil worker: {options.concurrency} process(es), queue {settings.broker_queue}, "
        f"database {_redacted(settings)}, blobs {context.blobs.description}"
    )
    raise typer.Exit(run_worker(context, build_lifecycle(context), options))


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument()] = "head",
    data_dir: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from vigil.core.database import build_engine
    from vigil.migrations.runner import upgrade_database

    settings = _settings(data_dir)
    upgrade_database(build_engine(settings, admin=True), revision)
    console.print(f"database at {revision}: {_redacted(settings)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")],
    data_dir: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Revert migrations down to REVISION."""
    from vigil.core.database import build_engine
    from vigil.migrations.runner import downgrade_database

    settings = _settings(data_dir)
    downgrade_database(build_engine(settings, admin=True), revision)
    console.print(f"database at {revision}: {_redacted(settings)}")


@db_app.command("create-app-role")
def db_create_app_role(
    name: Annotated[str, typer.Argument(help="The login role the server connects as, e.g. vigil_app.")] = "vigil_app",
    password: Annotated[
        str | None, typer.Option(envvar="VIGIL_APP_ROLE_PASSWORD", help="Its password (or VIGIL_APP_ROLE_PASSWORD).")
    ] = None,
) -> None:
    """PostgreSQL: create (or re-grant) the non-owner role the server should connect as, so row-level security
    holds. Runs as VIGIL_DATABASE_ADMIN_URL (or VIGIL_DATABASE_URL); idempotent."""
    from vigil.core.database import build_engine
    from vigil.migrations.roles import create_app_role

    settings = Settings()
    if settings.is_sqlite:
        console.print("[bold red]create-app-role is for PostgreSQL[/] (SQLite has no roles).")
        raise typer.Exit(2)
    engine = build_engine(settings, admin=True)
    try:
        with engine.begin() as connection:
            created = create_app_role(connection, role=name, password=password)
    except ValueError as exc:
        console.print(f"[bold red]{exc}[/]")
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    console.print(f"role {name} {'created' if created else 'exists'} and granted on {_redacted(settings)}")


@admin_app.command("reset-password")
def admin_reset_password(
    email: Annotated[
        str | None,
        typer.Argument(help="The account (default: VIGIL_BOOTSTRAP_ADMIN_EMAIL or admin@vigil.local)."),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from standard input instead.")
    ] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (default: VIGIL_DATA_DIR).")] = None,
) -> None:
    """Set a new password for an account — a lost superadmin's, typically — and print it if it was generated.
    Ends the account's sessions and lifts its lock-out. Works on the database directly, server running or not."""
    settings = _settings(data_dir)
    from vigil.core.database import Database
    from vigil.core.errors import VigilError
    from vigil.core.secrets import LOGIN_THROTTLE, MissingSecretError, derive_key, resolve_secret_key
    from vigil.identity.passwords import Passwords
    from vigil.identity.service import reset_password
    from vigil.identity.throttle import LoginThrottle

    new_password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    account = email or settings.bootstrap_admin_email or "admin@vigil.local"
    database = Database(settings)
    try:
        with database.session() as session:
            key = derive_key(resolve_secret_key(settings), LOGIN_THROTTLE)
            throttle = LoginThrottle(session=session, settings=settings, key=key)
            password, generated = reset_password(
                session=session, passwords=Passwords(settings), throttle=throttle, email=account, password=new_password
            )
    except (VigilError, MissingSecretError) as exc:
        console.print(f"[bold red]not reset:[/] {exc}")
        for error in getattr(exc, "extra", {}).get("errors", []):
            console.print(f"  {error['msg']}")
        raise typer.Exit(1) from exc
    finally:
        database.dispose()
    if generated:
        typer.echo(f"New password for {account}: {password}")
    else:
        typer.echo(f"Password of {account} changed.")


@admin_app.command("sweep-blobs")
def admin_sweep_blobs(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    grace_s: Annotated[
        float | None,
        typer.Option("--grace-s", min=0, help="Keep blobs younger than this (default VIGIL_BLOB_ORPHAN_GRACE_S)."),
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's blobs.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Delete at most this many (run again for more).")] = 10_000,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print the totals only, not each blob.")] = False,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Also check that every blob a row refers to exists (exit code 1 if not)."),
    ] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (default: VIGIL_DATA_DIR).")] = None,
) -> None:
    """Delete the blobs no database row refers to (a crash between a blob's write and its row's leaves them), once
    older than the grace: what the server's hourly sweep does, now. Works server running or not."""
    settings = _settings(data_dir)
    from vigil.app import blob_families
    from vigil.core.blob_sweep import missing_blobs, sweep_orphan_blobs
    from vigil.core.blobs import BlobInfo, BlobStore
    from vigil.core.database import Database
    from vigil.identity.repository import PlatformRepository

    verb = "would delete" if dry_run else "deleted"

    def show(blob: BlobInfo) -> None:
        if not quiet:
            typer.echo(f"{verb} {blob.key} ({blob.size} bytes)")

    database = Database(settings)
    blobs = BlobStore.from_settings(settings)
    families = blob_families().families
    missing: list[str] = []
    try:
        report = sweep_orphan_blobs(
            database=database,
            blobs=blobs,
            families=families,
            grace_s=settings.blob_orphan_grace_s if grace_s is None else grace_s,
            dry_run=dry_run,
            tenant=tenant,
            limit=limit,
            on_orphan=show,
        )
        if verify:
            with database.session() as session:
                tenants = [tenant] if tenant else [t.id for t in PlatformRepository(session=session).all_tenants()]
            missing = list(missing_blobs(database=database, blobs=blobs, families=families, tenants=tenants))
    finally:
        database.dispose()
    for directory in report.unknown:
        typer.echo(f"left alone (no known kind of blob): {directory}/")
    typer.echo(
        f"{report.scanned} blob(s) scanned; {verb} {report.orphans} orphan(s), {report.orphan_bytes} bytes; "
        f"{report.kept_young} unreferenced kept within the grace"
        + ("; stopped at --limit, run again for more" if report.truncated else "")
    )
    if verify:
        for key in missing:
            typer.echo(f"missing: {key} (a row refers to it)")
        typer.echo(f"{len(missing)} blob(s) missing that rows refer to")
        if missing:
            raise typer.Exit(1)


def _redacted(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url_resolved).render_as_string(hide_password=True)


def _mount_validation() -> None:
    try:
        from vigil_validation.cli import app as validation_app
    except ImportError:  # the suite is optional in a server-only install
        return
    app.add_typer(validation_app, name="validate")


_mount_validation()


def main() -> None:
    app()
