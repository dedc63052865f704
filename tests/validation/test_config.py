"""The suite's configuration: defaults load, a file merges over them, and every mistake names its key (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil_validation.cli import app
from vigil_validation.config import ConfigError, load_config

SECTIONS = (
    "api",
    "performance",
    "security",
    "load_testing",
    "multi_tenant",
    "disaster_recovery",
    "contracts",
    "test_data",
    "streaming",
    "environment",
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_have_every_section() -> None:
    config = load_config()
    assert all(getattr(config, section) is not None for section in SECTIONS)
    assert config.environment.target_url is None
    assert config.test_data.label_column not in config.test_data.features


def test_a_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "api:\n  job_timeout_s: 5\nenvironment:\n  parallel: 4\n"))
    assert config.api.job_timeout_s == 5
    assert config.environment.parallel == 4
    assert config.api.request_timeout_s == load_config().api.request_timeout_s


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("environment:\n  paralel: 4\n", "environment.paralel: unknown key"),
        ("api:\n  request_timeout_s: soon\n", "api.request_timeout_s"),
        ("test_data:\n  min_roc_auc: 1.5\n", "test_data.min_roc_auc"),
        ("environment:\n  target_url: ftp://example.com\n", "environment.target_url"),
        ("security:\n  password: short\n", "security.password"),
        ("bogus_section: {}\n", "bogus_section: unknown key"),
        ("api: [1, 2\n", "not valid YAML"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("load_testing:\n  profile: huge\n", "load_testing.profile"),
        ("load_testing:\n  short:\n    soak_warmup_s: 100\n", "soak_warmup_s must be shorter"),
        ("load_testing:\n  full:\n    stress_growth: 1\n", "load_testing.full.stress_growth"),
        ("load_testing:\n  max_requests: 0\n", "load_testing.max_requests"),
        ("performance:\n  error_rate_max: 2\n", "performance.error_rate_max"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert expected in str(error.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_command_line_options_are_validated_like_the_file() -> None:
    with pytest.raises(ConfigError, match=r"environment\.target_url"):
        load_config().with_environment(target_url="localhost:8000")
    assert load_config().with_environment(parallel=3).environment.parallel == 3


def test_invalid_config_exits_2_before_starting_anything(tmp_path: Path) -> None:
    bad = write(tmp_path, "contracts:\n  max_page_limit: -1\n")
    result = CliRunner().invoke(app, ["smoke", "--config", str(bad), "--report-dir", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert "contracts.max_page_limit" in result.output
    assert not (tmp_path / "r" / "server.log").exists()


def test_unknown_suite_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["suite", "--suite", "nonsense", "--report-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown suite" in result.output


def test_the_profile_is_chosen_on_the_command_line(tmp_path: Path) -> None:
    config = load_config()
    assert config.load_testing.profile == "short"
    assert config.load_testing.active == config.load_testing.short
    assert config.with_profile("full").load_testing.active == config.load_testing.full
    with pytest.raises(ConfigError, match="--profile"):
        config.with_profile("medium")
    result = CliRunner().invoke(
        app, ["suite", "--suite", "performance", "--profile", "medium", "--report-dir", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
