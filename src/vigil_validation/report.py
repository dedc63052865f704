"""The JSON summary of a run: per test its suite, outcome, duration, skip reason, failure and measured figures;
totals; and what the target was. Collected from pytest's reports in the controlling process."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

FIGURE_PROPERTY = "vigil.figure"
SERIES_PROPERTY = "vigil.series"
MESSAGE_LIMIT = 2000


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class, whatever its name

    nodeid: str
    suite: str
    outcome: str = "passed"  # passed, failed, skipped, error, xfailed, xpassed
    duration_s: float = 0.0
    skip_reason: str | None = None
    failure: str | None = None
    markers: list[str] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)
    # Structured data for plots: {name, kind, unit, data}; the HTML report draws the kinds it knows.
    series: list[dict[str, Any]] = field(default_factory=list)


def suite_of(nodeid: str) -> str:
    """`suites/contracts/test_x.py::test_y` → `contracts`."""
    parts = nodeid.split("::", 1)[0].replace("\\", "/").split("/")
    if "suites" in parts and parts.index("suites") + 1 < len(parts) - 1:
        return parts[parts.index("suites") + 1]
    return "other"


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
            result.markers = sorted(set(getattr(report, "keywords", {})) & _MARKERS)
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


DR_COUNTS = (
    "faults injected", "requests", "acknowledged", "lost", "duplicated", "unfinishable", "leaked",
    "jobs", "jobs unended", "jobs failed", "jobs given up after kills",
)  # fmt: skip


def disaster_recovery_summary(tests: list[dict[str, Any]]) -> dict[str, Any]:
    """Per disaster-recovery scenario and in total: faults injected, requests, acknowledged writes, lost,
    duplicated, unfinishable (each must be 0), and the recovery times (p50 and max over the scenarios)."""
    scenarios: dict[str, dict[str, float]] = {}
    rtos: list[float] = []
    worst: list[float] = []
    for test in tests:
        if test.get("suite") != "disaster_recovery" or not test.get("figures"):
            continue
        figures = {f["name"]: float(f["value"]) for f in test["figures"]}
        scenarios[str(test["nodeid"])] = {**figures, "outcome": test.get("outcome")}  # type: ignore[dict-item]
        for name in ("RTO", "RTO p50"):
            if name in figures:
                rtos.append(figures[name])
        worst += [figures[n] for n in ("RTO", "RTO max") if n in figures]
    if not scenarios:
        return {}
    total: dict[str, float] = {
        name: sum(s.get(name, 0.0) for s in scenarios.values() if isinstance(s.get(name, 0.0), float))
        for name in DR_COUNTS
    }
    if rtos:
        total["RTO p50"] = sorted(rtos)[len(rtos) // 2]
        total["RTO max"] = max(worst)
    return {"total": total, "scenarios": scenarios}


_MARKERS = {"smoke", "slow", "destructive", "managed_only"}
ATTACK_PREFIX = "attack:"


def attack_families(tests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per attack family (the security suite's `attack:<family>:<name>` figures, each an HTTP status): how many
    attempts, how they were answered (`refused` 4xx, `accepted` 2xx/3xx, `server_error` 5xx, and by status), and
    how many were made by tests that failed (an attack whose refusal a test did not see as expected)."""
    families: dict[str, dict[str, Any]] = {}
    for test in tests:
        for figure in test.get("figures", []):
            name = str(figure.get("name", ""))
            if not name.startswith(ATTACK_PREFIX):
                continue
            family = name[len(ATTACK_PREFIX) :].split(":", 1)[0]
            entry = families.setdefault(
                family,
                {"attempts": 0, "refused": 0, "accepted": 0, "server_error": 0, "in_failed_tests": 0, "statuses": {}},
            )
            status = int(figure.get("value", 0))
            entry["attempts"] += 1
            entry["statuses"][str(status)] = entry["statuses"].get(str(status), 0) + 1
            entry["server_error" if status >= 500 else "refused" if status >= 400 else "accepted"] += 1
            if test.get("outcome") in ("failed", "error"):
                entry["in_failed_tests"] += 1
    return dict(sorted(families.items()))


def merge_summaries(parts: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """One summary of several pytest sessions of one run (the suites, then the performance suite alone): tests,
    totals and suites added up, collection errors together, from the first start to the last end."""
    present = [p for p in parts if p is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    merged: dict[str, Any] = {
        **present[0],
        "duration_s": round(sum(float(p.get("duration_s", 0)) for p in present), 2),
        "pytest_exit_status": next(
            (p["pytest_exit_status"] for p in present if p.get("pytest_exit_status") not in (0, 5)),
            present[0].get("pytest_exit_status"),
        ),
        "totals": {},
        "suites": {},
        "collection_errors": [e for p in present for e in p.get("collection_errors", [])],
        "tests": sorted((t for p in present for t in p.get("tests", [])), key=lambda t: str(t.get("nodeid"))),
    }
    merged["attack_families"] = attack_families(merged["tests"])
    for part in present:
        for key, value in part.get("totals", {}).items():
            merged["totals"][key] = merged["totals"].get(key, 0) + int(value)
        for suite, counts in part.get("suites", {}).items():
            into = merged["suites"].setdefault(suite, {})
            for outcome, n in counts.items():
                into[outcome] = into.get(outcome, 0) + int(n)
    if dr := disaster_recovery_summary(merged["tests"]):
        merged["disaster_recovery"] = dr
    return merged


def load_summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
