"""The pytest side of the JSON summary (`report`): a plugin object, registered in the controlling process only,
that turns pytest's reports into `TestResult`s and writes the summary when the session ends."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from vigil_validation.report import (
    FIGURE_PROPERTY,
    MESSAGE_LIMIT,
    SERIES_PROPERTY,
    TestResult,
    attack_families,
    disaster_recovery_summary,
    suite_of,
)

MARKERS = {"smoke", "slow", "destructive", "managed_only", "alone"}  # the markers a result lists


def _message(report: pytest.TestReport | pytest.CollectReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(crash, "message", None) or str(report.longrepr)
    return text[:MESSAGE_LIMIT]


class SummaryCollector:
    """A pytest plugin object: registered in the controller only, it sees every report (xdist forwards them)."""

    def __init__(self, path: Path, target: dict[str, Any]) -> None:
        self.path = path
        self.target = target
        self.results: dict[str, TestResult] = {}
        self.collection_errors: list[dict[str, str]] = []
        self.started = time.time()

    def _result(self, report: pytest.TestReport) -> TestResult:
        if report.nodeid not in self.results:
            self.results[report.nodeid] = TestResult(nodeid=report.nodeid, suite=suite_of(report.nodeid))
        return self.results[report.nodeid]

    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append({"nodeid": report.nodeid, "error": _message(report)})

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = self._result(report)
        result.duration_s = round(result.duration_s + report.duration, 4)
        for name, value in report.user_properties:
            if name == FIGURE_PROPERTY and isinstance(value, dict) and value not in result.figures:
                result.figures.append(value)
            elif name == SERIES_PROPERTY and isinstance(value, dict) and value not in result.series:
                result.series.append(value)
        if report.when == "call":
            result.markers = sorted(set(getattr(report, "keywords", {})) & MARKERS)
        if hasattr(report, "wasxfail"):
            result.outcome = "xfailed" if report.skipped else "xpassed"
        elif report.skipped and result.outcome == "passed":
            result.outcome = "skipped"
            longrepr = report.longrepr
            reason = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
            result.skip_reason = reason.removeprefix("Skipped: ")
        elif report.failed:
            # A failure in set-up or tear-down is an error of the test's environment, not of the behaviour.
            result.outcome = "failed" if report.when == "call" else "error"
            detail = _message(report)
            result.failure = detail if result.failure is None else f"{result.failure}\n[{report.when}] {detail}"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.write(int(exitstatus))

    def write(self, exitstatus: int) -> None:
        tests = [asdict(r) for r in sorted(self.results.values(), key=lambda r: r.nodeid)]
        totals: dict[str, int] = {"total": len(tests)}
        for outcome in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
            totals[outcome] = sum(1 for t in tests if t["outcome"] == outcome)
        totals["collection_errors"] = len(self.collection_errors)
        suites: dict[str, dict[str, int]] = {}
        for t in tests:
            counts = suites.setdefault(t["suite"], {})
            counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
        public_target = {
            k: v for k, v in self.target.items() if k not in ("admin_password", "signing_key", "database_app_url")
        }
        summary = {
            "target": public_target,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "duration_s": round(time.time() - self.started, 2),
            "pytest_exit_status": exitstatus,
            "totals": totals,
            "suites": suites,
            "collection_errors": self.collection_errors,
            "attack_families": attack_families(tests),
            "tests": tests,
        }
        if dr := disaster_recovery_summary(tests):
            summary["disaster_recovery"] = dr
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
