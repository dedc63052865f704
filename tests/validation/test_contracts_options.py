"""The contracts suite's command-line options: `--fuzz-examples N` and `--baseline OLD_SPEC.json` reach its
configuration, and a bad one exits 2 before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil_validation.cli import app
from vigil_validation.config import ConfigError, load_config


def test_fuzz_examples_and_baseline_reach_the_contracts_section(tmp_path: Path) -> None:
    baseline = tmp_path / "old.json"
    baseline.write_text("{}")
    config = load_config().with_contracts(fuzz_examples=100, baseline_spec=str(baseline))
    assert config.contracts.fuzz_examples == 100
    assert config.contracts.baseline_spec == str(baseline.resolve())
    assert load_config().contracts.baseline_spec is None  # without the option the test is skipped


def test_a_missing_baseline_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--baseline"):
        load_config().with_contracts(baseline_spec=str(tmp_path / "absent.json"))
    result = CliRunner().invoke(
        app,
        ["suite", "--suite", "contracts", "--baseline", str(tmp_path / "absent.json"), "--report-dir", str(tmp_path)],
    )
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "server.log").exists()


def test_fuzz_examples_must_be_positive(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["suite", "--suite", "contracts", "--fuzz-examples", "0", "--report-dir", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
