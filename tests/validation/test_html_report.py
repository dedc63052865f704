"""The HTML report: one self-contained page (no script, nothing fetched), every known series kind drawn as an
embedded PNG, unknown kinds kept as data, and everything a test or target said escaped."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from vigil_validation.html_report import PLOTTERS, render, write_html_report
from vigil_validation.report import merge_summaries

HOSTILE = "<script>alert(1)</script>"
SERIES: dict[str, dict[str, Any]] = {
    "latency_steps": {
        "steps": [{"rate": r, "p50": 5, "p90": 9, "p99": 20 * r, "p99_9": 30 * r, "max": 40 * r} for r in (5, 10, 20)],
        "limit_ms": 1000,
    },
    "throughput": {"offered_per_s": [5, 10, 20], "operations": {"detect": [2.5, 5, 9.8], "list": [2.5, 5, 10]}},
    "memory": {"t_s": [0, 1, 2, 3, 4, 5], "rss_mib": [100, 101, 101, 102, 101, 101], "warmup_s": 2,
               "slope_mib_per_min": 0.1},
    "knee": {"rates": [10, 16, 25.6], "p99_ms": [30, 50, 3000], "error_rate": [0, 0, 0.2],
             "held": [True, True, False], "knee_per_s": 16, "p99_limit_ms": 1000},
    "timeline": {"t_s": [0, 1, 2, 3], "values": {"ok": [1, 0, 0, 1]}, "events": [{"t_s": 1, "label": "killed"}]},
}  # fmt: skip


def summary(tests: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "target": {"description": f"managed {HOSTILE}", "kind": "managed"},
        "started_at": "2030-01-01T00:00:00Z",
        "duration_s": 12.5,
        "totals": {"total": len(tests), "passed": 1, "failed": 1},
        "suites": {"performance": {"passed": 1, "failed": 1}},
        "collection_errors": [],
        "tests": tests,
    }


def result(nodeid: str, outcome: str = "passed", **extra: Any) -> dict[str, Any]:
    return {"nodeid": nodeid, "suite": "performance", "outcome": outcome, "duration_s": 1.0, "figures": [],
            "series": [], **extra}  # fmt: skip


def test_every_known_kind_is_drawn_and_the_page_is_self_contained(tmp_path: Path) -> None:
    series = [{"name": f"{kind} {HOSTILE}", "kind": kind, "unit": "ms", "data": data} for kind, data in SERIES.items()]
    series.append({"name": "custom", "kind": "something-new", "unit": "", "data": {"x": [1, 2], "note": HOSTILE}})
    page = write_html_report(
        summary(
            [
                result(
                    f"suites/performance/test_a.py::test_{HOSTILE}",
                    series=series,
                    figures=[{"name": "knee", "value": 16.0, "unit": "req/s"}],
                ),
                result("suites/performance/test_b.py::test_b", "failed", failure=f"assert p99 < 1000 {HOSTILE}"),
            ]
        ),
        tmp_path / "report.html",
    ).read_text()
    assert set(SERIES) == set(PLOTTERS)
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == len(SERIES)
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    assert not re.search(r"(src|href)=['\"]?https?:", page), "the page fetches something"
    assert "something-new" in page  # an unknown kind is shown as its data
    assert "&quot;x&quot;" in page
    assert "assert p99 &lt; 1000" in page
    assert ">16<" in page


def test_a_series_that_cannot_be_drawn_says_so_instead_of_breaking_the_report() -> None:
    broken = {"name": "bad", "kind": "memory", "unit": "", "data": {"t_s": [1, 2]}}  # no rss_mib
    page = render(summary([result("suites/performance/test_a.py::test_a", series=[broken])]))
    assert "cannot draw" in page


def test_summaries_of_two_sessions_merge() -> None:
    first = summary([result("suites/contracts/test_x.py::test_x")]) | {
        "totals": {"total": 1, "passed": 1},
        "suites": {"contracts": {"passed": 1}},
        "pytest_exit_status": 0,
    }
    second = summary([result("suites/performance/test_y.py::test_y", "failed")]) | {
        "totals": {"total": 1, "failed": 1},
        "suites": {"performance": {"failed": 1}},
        "pytest_exit_status": 1,
    }
    merged = merge_summaries([first, None, second])
    assert merged is not None
    assert merged["totals"] == {"total": 2, "passed": 1, "failed": 1}
    assert merged["suites"] == {"contracts": {"passed": 1}, "performance": {"failed": 1}}
    assert [t["nodeid"] for t in merged["tests"]] == [
        "suites/contracts/test_x.py::test_x",
        "suites/performance/test_y.py::test_y",
    ]
    assert merged["pytest_exit_status"] == 1
    assert merged["duration_s"] == 25.0
    assert merge_summaries([None]) is None
