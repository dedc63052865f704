"""Rich output of a run: what is validated against which target before, and a summary table after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from vigil_validation.config import ValidationConfig
from vigil_validation.targets import Target

OUTCOME_STYLE = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow", "xfailed": "yellow"}


def print_header(console: Console, selection: str, target: Target, config: ValidationConfig) -> None:
    lines = [
        f"[bold]selection[/]  {selection}",
        f"[bold]target[/]     {target.description}",
        f"[bold]workers[/]    {config.environment.parallel}",
    ]
    if target.server_log:
        lines.append(f"[bold]server log[/] {target.server_log}")
    console.print(Panel("\n".join(lines), title="vigil validate", expand=False))


def print_summary(console: Console, summary: dict[str, Any] | None, report_dir: Path) -> None:
    if summary is None:
        console.print("[red]pytest wrote no summary (it failed before running any test); see its output above[/]")
        return
    table = Table(title="Validation summary", show_lines=False)
    table.add_column("suite")
    outcomes = ("passed", "failed", "error", "skipped")
    for outcome in outcomes:
        table.add_column(outcome, justify="right", style=OUTCOME_STYLE.get(outcome))
    for suite, counts in sorted(summary.get("suites", {}).items()):
        table.add_row(suite, *(str(counts.get(o, 0)) for o in outcomes))
    totals = summary.get("totals", {})
    table.add_row("[bold]total[/]", *(f"[bold]{totals.get(o, 0)}[/]" for o in outcomes))
    console.print(table)
    figures = [(t["nodeid"], f) for t in summary.get("tests", []) for f in t.get("figures", [])]
    if figures:
        measured = Table(title="Measured figures")
        for column in ("test", "figure", "value"):
            measured.add_column(column)
        for nodeid, figure in figures:
            measured.add_row(nodeid.split("::")[-1], figure["name"], f"{figure['value']:.4g} {figure['unit']}".strip())
        console.print(measured)
    for test in summary.get("tests", []):
        if test["outcome"] in ("failed", "error"):
            first = (test.get("failure") or "").strip().splitlines()[:1]
            console.print(f"[red]✗ {test['nodeid']}[/] {first[0] if first else ''}")
    console.print(
        f"{totals.get('total', 0)} tests in {summary.get('duration_s', 0):.1f}s — reports in {report_dir} "
        "(summary.json, junit.xml)"
    )
