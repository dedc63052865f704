"""The JSON summary of a run: per test its suite, outcome, duration, skip reason, failure and measured figures;
totals; and what the target was. `collector` gathers it from pytest's reports; this module reads and merges
summaries without pytest (every `vigil` command imports it, and pytest costs ~0.3 s to import)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
