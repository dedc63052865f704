"""Rich output of a run: what is validated against which target before, and a summary table after.

Names and values are folded onto further lines, never cut: a narrow terminal (or CI's 80 columns) shows them whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from vigil_validation.config import ValidationConfig
from vigil_validation.report import ATTACK_PREFIX
from vigil_validation.targets import Target

TROUBLE_LEVELS = {"warning", "error", "critical"}
TROUBLE_LINES = 30
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
    table.add_column("suite", overflow="fold")
    outcomes = ("passed", "failed", "error", "skipped")
    for outcome in outcomes:
        table.add_column(outcome, justify="right", style=OUTCOME_STYLE.get(outcome))
    for suite, counts in sorted(summary.get("suites", {}).items()):
        table.add_row(suite, *(str(counts.get(o, 0)) for o in outcomes))
    totals = summary.get("totals", {})
    table.add_row("[bold]total[/]", *(f"[bold]{totals.get(o, 0)}[/]" for o in outcomes))
    console.print(table)
    print_attack_families(console, summary.get("attack_families") or {})
    # Attacks are summed up per family above, not listed one line each.
    figures = [
        (t["nodeid"], f)
        for t in summary.get("tests", [])
        for f in t.get("figures", [])
        if not str(f.get("name", "")).startswith(ATTACK_PREFIX)
    ]
    if figures:
        measured = Table(title="Measured figures")
        for column in ("test", "figure", "value"):
            measured.add_column(column, overflow="fold")
        for nodeid, figure in figures:
            measured.add_row(nodeid.split("::")[-1], figure["name"], f"{figure['value']:.4g} {figure['unit']}".strip())
        console.print(measured)
    for test in summary.get("tests", []):
        if test["outcome"] in ("failed", "error"):
            first = (test.get("failure") or "").strip().splitlines()[:1]
            console.print(f"[red]✗ {test['nodeid']}[/] {first[0] if first else ''}", overflow="fold")
    console.print(
        f"{totals.get('total', 0)} tests in {summary.get('duration_s', 0):.1f}s — reports in {report_dir} "
        "(report.html, summary.json, junit.xml)",
        overflow="fold",
    )


def print_attack_families(console: Console, families: dict[str, dict[str, Any]]) -> None:
    """One line per attack family: attempts and how the target answered them."""
    if not families:
        return
    table = Table(title="Attacks by family")
    table.add_column("family", overflow="fold")
    # refused (4xx), accepted (2xx/3xx), server errors (5xx), attempts made by tests that failed
    for column in ("attempts", "4xx", "2xx/3xx", "5xx", "failed"):
        table.add_column(column, justify="right")
    table.add_column("statuses", overflow="fold")
    totals = dict.fromkeys(("attempts", "refused", "accepted", "server_error", "in_failed_tests"), 0)
    for family, entry in families.items():
        for key in totals:
            totals[key] += int(entry.get(key, 0))
        statuses = ", ".join(f"{code}×{n}" for code, n in sorted(entry.get("statuses", {}).items()))
        table.add_row(
            family,
            str(entry["attempts"]),
            str(entry["refused"]),
            _flag(entry["accepted"], "yellow"),
            _flag(entry["server_error"], "red"),
            _flag(entry["in_failed_tests"], "red"),
            statuses,
        )
    table.add_row(
        "[bold]total[/]",
        f"[bold]{totals['attempts']}[/]",
        f"[bold]{totals['refused']}[/]",
        _flag(totals["accepted"], "yellow"),
        _flag(totals["server_error"], "red"),
        _flag(totals["in_failed_tests"], "red"),
        "",
    )
    console.print(table)


def _flag(count: int, style: str) -> str:
    return f"[{style}]{count}[/]" if count else "0"


def print_server_trouble(console: Console, server_log: str | None, lines: int = TROUBLE_LINES) -> None:
    """The server's last warnings and errors, after a failed run: what a CI log needs to explain a failure that the
    report directory (and its server.log) will not outlive."""
    if not server_log:
        return
    try:
        text = Path(server_log).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    trouble = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in TROUBLE_LEVELS:
            trouble.append(line[:1000])
    if trouble:
        console.print(f"[bold]the server's last warnings and errors[/] ({len(trouble)} in {server_log}):")
        for line in trouble[-lines:]:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
