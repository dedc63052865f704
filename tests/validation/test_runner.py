"""The runner end to end against real servers: exit codes 0, 1 and 3, and the reports it writes."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from tests.client.live_server import live_server
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from vigil_validation.cli import app
from vigil_validation.config import load_config
from vigil_validation.report import suite_of
from vigil_validation.runner import Selection, UsageError, phases, pytest_command


@pytest.fixture(scope="module")
def remote_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(tmp_path_factory.mktemp("vigil-data")) as url:
        yield url


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_VALIDATION_ADMIN_EMAIL", ADMIN_EMAIL)
    monkeypatch.setenv("VIGIL_VALIDATION_ADMIN_PASSWORD", ADMIN_PASSWORD)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_unreachable_remote_target_exits_3(tmp_path: Path, credentials: None) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, output = invoke("smoke", "--target", f"http://127.0.0.1:{port}", "--report-dir", str(tmp_path))
    assert code == 3, output
    assert "unreachable" in output


def test_remote_target_without_credentials_exits_2(
    tmp_path: Path, remote_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIGIL_VALIDATION_ADMIN_EMAIL", raising=False)
    monkeypatch.delenv("VIGIL_VALIDATION_ADMIN_PASSWORD", raising=False)
    code, output = invoke("smoke", "--target", remote_url, "--report-dir", str(tmp_path))
    assert code == 2, output
    assert "VIGIL_VALIDATION_ADMIN_EMAIL" in output


def test_passing_run_writes_junit_and_summary(tmp_path: Path, remote_url: str, credentials: None) -> None:
    code, output = invoke(
        "suite", "--suite", "contracts", "-k", "health or limit_is_bounded", "--target", remote_url,
        "--parallel", "1", "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["target"]["kind"] == "remote"
    assert "admin_password" not in summary["target"]
    assert summary["totals"]["passed"] == summary["totals"]["total"] == 2
    assert {t["suite"] for t in summary["tests"]} == {"contracts"}
    assert all(t["duration_s"] > 0 for t in summary["tests"])
    suite = ElementTree.parse(tmp_path / "junit.xml").getroot()
    assert sum(int(s.get("tests", "0")) for s in suite.iter("testsuite")) == 2


def test_failing_run_exits_1_with_the_failure_in_the_summary(
    tmp_path: Path, remote_url: str, credentials: None
) -> None:
    # A config that expects a smaller page limit than the server's makes one contract test fail for real.
    config = tmp_path / "strict.yaml"
    config.write_text("contracts:\n  max_page_limit: 499\n")
    code, output = invoke(
        "suite", "--suite", "contracts", "-k", "limit_is_bounded", "--config", str(config),
        "--target", remote_url, "--parallel", "1", "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 1, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    [test] = summary["tests"]
    assert test["outcome"] == "failed"
    assert "422" in test["failure"]


def test_figures_and_skips_reach_the_summary(tmp_path: Path, remote_url: str, credentials: None) -> None:
    code, output = invoke(
        "suite", "--suite", "end_to_end", "-k", "csv_upload", "--target", remote_url,
        "--parallel", "1", "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, output
    [test] = json.loads((tmp_path / "summary.json").read_text())["tests"]
    figures = {f["name"]: f for f in test["figures"]}
    assert figures["roc_auc_iforest"]["value"] >= 0.9
    assert figures["training_time"]["unit"] == "s"
    assert "smoke" in test["markers"]


def test_suite_of_nodeids() -> None:
    assert suite_of("suites/contracts/test_x.py::test_y[1]") == "contracts"
    assert suite_of("elsewhere/test_x.py::test_y") == "other"


def test_the_performance_suite_runs_alone_after_the_others() -> None:
    config = load_config().with_environment(parallel=2)
    every = phases(Selection("all"), config)
    assert [p.name for p in every] == ["suites", "alone", "disaster_recovery", "performance"]
    assert "performance" not in every[0].suites
    assert "disaster_recovery" not in every[0].suites
    assert [p.parallel for p in every] == [2, 1, 1, 1]
    assert len({p.junit for p in every}) == len({p.summary for p in every}) == 4
    [alone] = phases(Selection("performance", suites=("performance",)), config)
    assert (alone.suites, alone.parallel, alone.junit) == (("performance",), 1, "junit.xml")
    without, _tests_alone, _dr = phases(Selection("all"), config, exclude=("performance",))
    assert "performance" not in without.suites
    with pytest.raises(UsageError, match="unknown suite"):
        phases(Selection("all"), config, exclude=("perfromance",))


def test_tests_marked_alone_run_after_the_parallel_ones_and_a_marker_selection_holds_in_every_phase() -> None:
    config = load_config().with_environment(parallel=2)
    parallel, serial, _dr, _perf = (pytest_command(p, config, Path("r"), ()) for p in phases(Selection("all"), config))
    assert parallel[parallel.index("-m", 3) + 1] == "(not alone)"
    assert "-n" in parallel
    assert serial[serial.index("-m", 3) + 1] == "(alone)"
    assert "-n" not in serial
    smoke = [pytest_command(p, config, Path("r"), ()) for p in phases(Selection("smoke", markers="smoke"), config)]
    expressions = [c[c.index("-m", 3) + 1] for c in smoke]
    assert expressions == ["(smoke) and (not alone)", "(smoke) and (alone)", "smoke", "smoke"]
    the_suite = pytest_command(phases(Selection("security", suites=("security",)), config)[0], config, Path("r"), ())
    assert the_suite[the_suite.index("-m", 3) + 1] == "(not alone)"


def test_performance_series_reach_the_summary_and_the_html_report(
    tmp_path: Path, remote_url: str, credentials: None
) -> None:
    """A tiny stress ramp against a live server named with --target (so its memory and CPU come from /metrics)."""
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "load_testing:\n  short:\n    virtual_users: 3\n    stress_start_per_s: 4\n    stress_growth: 2\n"
        "    stress_max_per_s: 8\n    stress_step_s: 1\n"
    )
    code, output = invoke(
        "suite", "--suite", "performance", "-k", "stress", "--config", str(config), "--target", remote_url,
        "--report-dir", str(tmp_path / "reports"),
    )  # fmt: skip
    assert code == 0, output
    [test] = json.loads((tmp_path / "reports" / "summary.json").read_text())["tests"]
    [series] = test["series"]
    assert series["kind"] == "knee"
    assert series["data"]["rates"] == [4, 8]
    assert series["data"]["knee_per_s"] == 8
    assert {f["name"] for f in test["figures"]} >= {"knee", "CPU per request at the knee"}
    page = (tmp_path / "reports" / "report.html").read_text()
    assert "data:image/png;base64," in page
