"""The run summary: attacks summed up per family (attempts and outcomes), shown as one table on the console; after
a failed run, the server's last warnings and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from vigil_validation.console import print_server_trouble, print_summary
from vigil_validation.report import attack_families, merge_summaries


def _test(nodeid: str, outcome: str, *statuses: tuple[str, int]) -> dict[str, Any]:
    figures = [{"name": f"attack:{name}", "value": status, "unit": "HTTP status"} for name, status in statuses]
    figures.append({"name": "peak_rss_mb", "value": 120.0, "unit": "MB"})
    return {"nodeid": nodeid, "suite": "security", "outcome": outcome, "figures": figures}


TESTS = [
    _test("suites/security/test_a.py::test_jwt", "passed", ("jwt:alg-none", 401), ("jwt:expired", 401)),
    _test("suites/security/test_b.py::test_keys", "failed", ("api-key:beyond-scope", 403), ("api-key:replay", 201)),
    _test("suites/security/test_c.py::test_bodies", "passed", ("hostile-input:huge", 413), ("hostile-input:nul", 500)),
]


def test_attacks_are_counted_per_family_with_their_outcomes() -> None:
    families = attack_families(TESTS)
    assert list(families) == ["api-key", "hostile-input", "jwt"]
    assert families["jwt"] == {
        "attempts": 2,
        "refused": 2,
        "accepted": 0,
        "server_error": 0,
        "in_failed_tests": 0,
        "statuses": {"401": 2},
    }
    assert families["api-key"]["accepted"] == 1
    assert families["api-key"]["in_failed_tests"] == 2
    assert families["hostile-input"]["server_error"] == 1
    merged = merge_summaries(
        [{"tests": TESTS[:1], "pytest_exit_status": 0}, {"tests": TESTS[1:], "pytest_exit_status": 1}]
    )
    assert merged is not None
    assert merged["attack_families"] == families


def test_the_console_shows_one_line_per_family_not_per_attack(tmp_path: Path) -> None:
    console = Console(record=True, width=160)
    summary = {"suites": {}, "totals": {}, "tests": TESTS, "attack_families": attack_families(TESTS)}
    print_summary(console, summary, tmp_path)
    text = console.export_text()
    assert "Attacks by family" in text
    assert "alg-none" not in text  # no line per attack…
    assert "peak_rss_mb" in text  # …while other figures are still listed
    family_line = next(line for line in text.splitlines() if "hostile-input" in line)
    assert "413×1" in family_line
    assert "500×1" in family_line


def test_a_narrow_console_folds_names_instead_of_cutting_them(tmp_path: Path) -> None:
    name = "test_feedback_then_retrain_improves_the_holdout_metrics"
    figure = "roc_auc_before_feedback_on_the_holdout"
    tests = [{"nodeid": f"suites/e2e/test_x.py::{name}", "suite": "end_to_end", "outcome": "passed",
              "figures": [{"name": figure, "value": 0.52, "unit": ""}]}]  # fmt: skip
    console = Console(record=True, width=50)
    print_summary(console, {"suites": {"end_to_end": {"passed": 1}}, "totals": {"passed": 1}, "tests": tests}, tmp_path)
    lines = console.export_text().splitlines()
    rows = [line.split("│") for line in lines if line.count("│") == 4]
    # Each cell of the figures table, read down its column, holds the whole name.
    assert name in "".join(row[1].strip() for row in rows)
    assert figure in "".join(row[2].strip() for row in rows)
    assert max(len(line) for line in lines) <= 50


def test_a_failed_run_prints_the_servers_last_warnings_and_errors(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    lines = [
        "Vigil on http://127.0.0.1:1 (not JSON: skipped)",
        json.dumps({"event": "fine", "level": "info"}),
        *(json.dumps({"event": f"slow write {i}", "level": "warning"}) for i in range(3)),
        json.dumps({"event": "boom", "level": "error"}),
    ]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    console = Console(record=True, width=200)
    print_server_trouble(console, str(log), lines=3)
    printed = console.export_text()
    assert "4 in" in printed
    assert "slow write 0" not in printed
    assert all(f in printed for f in ("slow write 1", "slow write 2", "boom"))
    assert "fine" not in printed
    quiet = Console(record=True)
    print_server_trouble(quiet, str(tmp_path / "missing.log"))
    print_server_trouble(quiet, None)
    assert quiet.export_text() == ""
