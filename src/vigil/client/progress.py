"""A Rich progress bar that follows a job while the SDK (or the CLI) waits for it: stage, percent, ETA."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from vigil.client.models import Job


class JobBar:
    """Call `update` with each state of the job; `close` when done. Draws on standard error, so a command's
    output (`--json`) stays clean."""

    def __init__(self, job_id: str, *, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[eta]}"),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task(job_id, total=100.0, eta="")
        self._progress.start()

    def update(self, job: Job) -> None:
        stage = job.get("stage") or job.get("status") or ""
        eta = job.get("eta_s")
        self._progress.update(
            self._task,
            completed=float(job.get("progress") or 0.0),
            description=f"{job.get('kind', 'job')} · {stage}" if stage else str(job.get("kind", "job")),
            eta=f"~{eta:.0f}s left" if isinstance(eta, int | float) else "",
        )

    def close(self) -> None:
        self._progress.stop()
