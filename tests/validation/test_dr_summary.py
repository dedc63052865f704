"""The JSON summary's disaster-recovery section: per scenario and in total, from the figures the scenarios record;
and the checker's classification of what a client saw."""

from __future__ import annotations

from vigil_validation.report import disaster_recovery_summary, merge_summaries
from vigil_validation.suites.disaster_recovery.writes import classify


def _test(nodeid: str, suite: str, **figures: float) -> dict[str, object]:
    return {
        "nodeid": nodeid,
        "suite": suite,
        "outcome": "passed",
        "figures": [{"name": k.replace("_", " "), "value": v, "unit": ""} for k, v in figures.items()],
    }


def test_totals_add_up_the_scenarios_and_take_the_worst_recovery() -> None:
    tests = [
        _test("suites/disaster_recovery/test_a.py::a", "disaster_recovery", faults_injected=2, requests=50,
              acknowledged=40, lost=0, duplicated=1, unfinishable=0, **{"RTO p50": 1.0, "RTO max": 3.0}),
        _test("suites/disaster_recovery/test_b.py::b", "disaster_recovery", faults_injected=1, requests=10, RTO=2.0),
        _test("suites/security/test_c.py::c", "security", requests=999),
    ]  # fmt: skip
    summary = disaster_recovery_summary(tests)
    assert set(summary["scenarios"]) == {
        "suites/disaster_recovery/test_a.py::a",
        "suites/disaster_recovery/test_b.py::b",
    }
    total = summary["total"]
    assert total["faults injected"] == 3
    assert total["requests"] == 60
    assert total["acknowledged"] == 40
    assert total["duplicated"] == 1
    assert total["RTO max"] == 3.0
    assert total["RTO p50"] in (1.0, 2.0)
    assert disaster_recovery_summary([tests[2]]) == {}


def test_the_merged_summary_keeps_the_section() -> None:
    part = {
        "tests": [_test("suites/disaster_recovery/t.py::x", "disaster_recovery", lost=0, RTO=1.5)],
        "totals": {},
        "pytest_exit_status": 0,
    }
    merged = merge_summaries([part, {"tests": [], "totals": {}, "pytest_exit_status": 0}])
    assert merged is not None
    assert merged["disaster_recovery"]["total"]["RTO max"] == 1.5


def test_what_the_client_saw_decides_what_the_checker_demands() -> None:
    assert classify(201) == "ack"
    assert classify(422) == "refused"
    for unknown in (0, 500, 503, 409, 429):  # no answer, or an answer that does not say the write is not there
        assert classify(unknown) == "unknown"
