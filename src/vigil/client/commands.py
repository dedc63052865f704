"""The `vigil` command's data side — `login`, `datasets`, `detectors`, `jobs` — a thin shell over the SDK, so it
works against any deployment. Tables for people, `--json` for scripts; progress bars on standard error.

Where the server is and who you are: `vigil login` keeps the URL and the token pair in
`$VIGIL_CONFIG_DIR/credentials.json` (default `~/.config/vigil`, readable by you alone); `VIGIL_URL`,
`VIGIL_TOKEN` or `VIGIL_API_KEY` override it. The refresh token is rotated as the SDK uses it, and kept.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vigil.client.client import VigilClient
from vigil.client.errors import JobFailed, VigilAPIError, VigilConnectionError, VigilError
from vigil.client.models import ApiModel, Job

if TYPE_CHECKING:
    import polars as pl

DEFAULT_URL = "http://127.0.0.1:8000"
out = Console()
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
datasets_app = typer.Typer(help="Upload, list, show and download datasets.", no_args_is_help=True)
detectors_app = typer.Typer(help="Create detectors, train them, detect anomalies.", no_args_is_help=True)
jobs_app = typer.Typer(help="Follow long work: show a job, wait for it with a progress bar.", no_args_is_help=True)


# -- where and who --------------------------------------------------------------------------------------------------
def config_dir() -> Path:
    return Path(os.environ.get("VIGIL_CONFIG_DIR") or Path.home() / ".config" / "vigil")


def _credentials_path() -> Path:
    return config_dir() / "credentials.json"


def _load() -> dict[str, Any]:
    path = _credentials_path()
    if not path.exists():
        return {}
    loaded = json.loads(path.read_text())
    return loaded if isinstance(loaded, dict) else {}


def _save(values: dict[str, Any]) -> None:
    path = _credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Created owner-only before anything is written into it: tokens are credentials.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)


@contextmanager
def session() -> Iterator[VigilClient]:
    """A client of the configured server with the configured credentials; a rotated token pair is kept; errors
    become one readable line and exit code 1 (3 when the server cannot be reached)."""
    stored = _load()
    url = os.environ.get("VIGIL_URL") or stored.get("url") or DEFAULT_URL
    token, api_key = os.environ.get("VIGIL_TOKEN"), os.environ.get("VIGIL_API_KEY")
    from_file = not token and not api_key
    client = VigilClient(url, token=token or (stored.get("access_token") if from_file else None), api_key=api_key)
    if from_file:
        client.refresh_token = stored.get("refresh_token")
    try:
        with client:
            yield client
    except JobFailed as exc:
        err.print(f"[bold red]job {exc.job.get('status')}:[/] {exc.error.get('detail') or exc.error.get('title')}")
        raise typer.Exit(1) from exc
    except VigilAPIError as exc:
        err.print(f"[bold red]{exc.status} {exc.title or 'error'}:[/] {exc.detail or ''}")
        for error in exc.errors:
            err.print(f"  {'.'.join(str(p) for p in error.get('loc', []))}: {error.get('msg')}")
        if exc.status == 401:
            err.print("  (log in again: vigil login)")
        raise typer.Exit(1) from exc
    except VigilConnectionError as exc:
        err.print(f"[bold red]cannot reach {url}:[/] {exc}")
        raise typer.Exit(3) from exc
    except VigilError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        if from_file and client.token and client.token != stored.get("access_token"):
            _save({**stored, "url": url, "access_token": client.token, "refresh_token": client.refresh_token})


def login(
    email: Annotated[str, typer.Option(prompt=True, help="Your account's email.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="Prompted for when not given.")],
    url: Annotated[str, typer.Option(envvar="VIGIL_URL", help="The server.")] = DEFAULT_URL,
) -> None:
    """Log in and keep the session for the next commands (tokens in $VIGIL_CONFIG_DIR/credentials.json, yours
    alone). Access tokens live minutes; the kept refresh token renews them until the session ends."""
    with VigilClient(url) as client:
        try:
            tokens = client.login(email, password)
        except VigilAPIError as exc:
            err.print(f"[bold red]{exc.status} {exc.title or 'error'}:[/] {exc.detail or ''}")
            raise typer.Exit(1) from exc
        except VigilConnectionError as exc:
            err.print(f"[bold red]cannot reach {url}:[/] {exc}")
            raise typer.Exit(3) from exc
    _save({"url": url, "access_token": tokens["access_token"], "refresh_token": tokens.get("refresh_token")})
    err.print(f"logged in to {url} as {email}")


# -- output ---------------------------------------------------------------------------------------------------------
def emit(value: Any, as_json: bool, columns: list[str] | None = None, title: str | None = None) -> None:
    """JSON for scripts, or a table for people (one row per item, or one row per field of a single item).

    In a table, ids are never folded — however narrow the output (a pipe or CI's log: 80 columns), an id stays
    whole on one line, so it can be copied into the next command; other columns give way."""
    if as_json:
        sys.stdout.write(json.dumps(_plain(value, as_json=True), indent=2, default=str) + "\n")
        return
    value = _plain(value, as_json=False)
    items = value if isinstance(value, list) else None
    table = Table(title=title, expand=False)
    if items is not None:
        names = columns or (list(items[0]) if items else [])
        rows = [[_cell(item.get(name)) for name in names] for item in items]
        for i, name in enumerate(names):
            if _is_id(name):
                table.add_column(name, no_wrap=True, min_width=max((len(row[i]) for row in rows), default=0))
            else:
                table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*row)
    else:
        cells = [(name, _cell(cell)) for name, cell in value.items() if columns is None or name in columns]
        ids = [text for name, text in cells if _is_id(name)]
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold", min_width=max((len(text) for text in ids), default=None))
        for name, text in cells:
            table.add_row(name, text)
    out.print(table)


def _is_id(name: str) -> bool:
    return name == "id" or name.endswith("_id")


def _plain(value: Any, *, as_json: bool) -> Any:
    """The SDK's typed results as the JSON they came from (for a table, with dates as dates)."""
    if isinstance(value, ApiModel):
        return value.to_dict() if as_json else value.model_dump(by_alias=True)
    if isinstance(value, list):
        return [_plain(item, as_json=as_json) for item in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")  # to the second, in UTC (as the API gives it)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


# -- datasets -------------------------------------------------------------------------------------------------------
@datasets_app.command("upload")
def datasets_upload(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .csv, .json, .parquet or .arrow file.")],
    name: Annotated[str | None, typer.Option(help="Default: the file's name.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a file as a new dataset."""
    with session() as vigil:
        dataset = vigil.datasets.upload(path, name=name)
    emit(dataset, as_json, ["id", "name", "rows", "columns", "size_bytes", "created_at"])


@datasets_app.command("list")
def datasets_list(limit: Annotated[int, typer.Option(min=1, max=500)] = 50, as_json: JsonOption = False) -> None:
    """The tenant's datasets, newest first."""
    with session() as vigil:
        items = vigil.datasets.list(limit=limit)["items"]
    emit(items, as_json, ["id", "name", "rows", "columns", "created_at"])


@datasets_app.command("show")
def datasets_show(dataset_id: str, as_json: JsonOption = False) -> None:
    """One dataset: size, columns and their inferred types."""
    with session() as vigil:
        dataset = vigil.datasets.get(dataset_id)
    emit(dataset, as_json)


@datasets_app.command("download")
def datasets_download(
    dataset_id: str,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write it.")],
    file_format: Annotated[str, typer.Option("--format", help="parquet, csv, json or arrow.")] = "csv",
) -> None:
    """Download a dataset (a result dataset too) to a file."""
    with session() as vigil:
        content = vigil.datasets.download(dataset_id, format=file_format, to=output)
    err.print(f"{len(content)} bytes written to {output}")


# -- detectors ------------------------------------------------------------------------------------------------------
@detectors_app.command("create")
def detectors_create(
    name: Annotated[str, typer.Option(help="A name for people.")],
    algorithm: Annotated[str, typer.Option(help="From GET /api/v1/algorithms; auto by default.")] = "auto",
    contamination: Annotated[float | None, typer.Option(help="Expected share of anomalies.")] = None,
    features: Annotated[str | None, typer.Option(help="Comma-separated columns (default: all numeric).")] = None,
    param: Annotated[list[str] | None, typer.Option(help="A parameter as NAME=VALUE (JSON value); repeatable.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a detector."""
    parameters = {}
    for item in param or []:
        key, _, raw = item.partition("=")
        try:
            parameters[key] = json.loads(raw)
        except ValueError:
            parameters[key] = raw
    with session() as vigil:
        detector = vigil.detectors.create(
            name=name,
            algorithm=algorithm,
            contamination=contamination,
            parameters=parameters or None,
            features=[f.strip() for f in features.split(",")] if features else None,
        )
    emit(detector, as_json, ["id", "name", "algorithm", "contamination", "features", "status"])


@detectors_app.command("train")
def detectors_train(
    detector_id: str,
    dataset: Annotated[str, typer.Option(help="The dataset to train on.")],
    wait: Annotated[bool, typer.Option(help="Wait for the job, with a progress bar.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Train a new model version (a job)."""
    with session() as vigil:
        job = vigil.detectors.train(detector_id, dataset)
        if wait:
            job = _wait(vigil, job.id, bar=not as_json)
    emit(job, as_json, ["id", "kind", "status", "progress", "stage", "result"])


@detectors_app.command("detect")
def detectors_detect(
    detector_id: str,
    dataset: Annotated[
        str | None, typer.Option(help="Score a stored dataset (a job: its result is a dataset).")
    ] = None,
    file: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="Score a CSV or Parquet file.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the scored rows here (CSV).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Score rows: a local file (answered at once) or a stored dataset (a job whose result is a new dataset)."""
    if (dataset is None) == (file is None):
        err.print("[bold red]give exactly one of --dataset or --file[/]")
        raise typer.Exit(2)
    with session() as vigil:
        if dataset is not None:
            started = vigil.detectors.detect(detector_id, dataset_id=dataset)
            job = _wait(vigil, str(started["id"]), bar=not as_json)
            result = job.result or {}
            if output is not None:
                vigil.datasets.download(str(result["result_dataset_id"]), format="csv", to=output)
            emit(result, as_json)
            return
        assert file is not None
        import polars as pl  # noqa: PLC0415 (every command would pay for it at the top)

        frame = pl.read_parquet(file) if file.suffix.lower() == ".parquet" else pl.read_csv(file)
        scored: pl.DataFrame = vigil.detectors.score(detector_id, frame)
    if output is not None:
        scored.write_csv(output)
    flagged = scored.with_row_index("row").filter(pl.col("is_anomaly"))
    summary = {"rows": scored.height, "anomalies": flagged.height, "anomalous_rows": flagged["row"].to_list()}
    emit(summary, as_json)


# -- jobs -----------------------------------------------------------------------------------------------------------
@jobs_app.command("show")
def jobs_show(job_id: str, as_json: JsonOption = False) -> None:
    """A job's status, stage, progress, ETA, result or error."""
    with session() as vigil:
        job = vigil.jobs.get(job_id)
    emit(job, as_json)


@jobs_app.command("wait")
def jobs_wait(
    job_id: str,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Wait for a job to end, with a progress bar; exit code 1 unless it succeeded."""
    with session() as vigil:
        job = vigil.jobs.wait(job_id, timeout=timeout, progress=not as_json)
    emit(job, as_json, ["id", "kind", "status", "stage", "result", "error"])
    if job["status"] != "succeeded":
        raise typer.Exit(1)


def _wait(vigil: VigilClient, job_id: str, *, bar: bool) -> Job:
    job = vigil.jobs.wait(job_id, progress=bar)
    if job["status"] != "succeeded":
        raise JobFailed(job)
    return job


def register(app: typer.Typer) -> None:
    """Mounts the data commands on the `vigil` command."""
    app.command("login")(login)
    app.add_typer(datasets_app, name="datasets")
    app.add_typer(detectors_app, name="detectors")
    app.add_typer(jobs_app, name="jobs")
