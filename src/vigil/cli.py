"""The `vigil` command: `serve` the platform, `db` migrations, and `validate` a deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vigil.config import Settings

app = typer.Typer(help="Vigil: multi-tenant anomaly detection.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console(stderr=True)


def _settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data directory (default: VIGIL_DATA_DIR or ./vigil-data).")
    ] = None,
) -> None:
    """Run the API server (SQLite in the data directory unless VIGIL_DATABASE_URL says otherwise)."""
    import uvicorn

    from vigil.app import create_app
    from vigil.core.secrets import MissingSecretError

    settings = _settings(data_dir)
    try:
        application = create_app(settings)
    except MissingSecretError as exc:
        console.print(f"[bold red]refusing to start:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"Vigil on http://{host}:{port}  (data: {settings.data_dir}, database: {_redacted(settings)})")
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        # Which X-Forwarded-For to believe is VIGIL_TRUSTED_PROXIES' decision alone, not uvicorn's default.
        proxy_headers=False,
        # Stream WebSockets: protocol pings find dead peers; frames above the limit are refused by the app with a
        # problem frame, and anything far beyond it by the server before it is buffered.
        ws_ping_interval=settings.stream_ws_ping_interval_s,
        ws_ping_timeout=settings.stream_ws_ping_interval_s,
        ws_max_size=4 * settings.stream_max_frame_bytes,
    )


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
