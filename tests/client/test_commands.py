"""The data commands of `vigil`, against a real server: log in once, upload, create, train with a progress bar,
detect from a file and from a stored dataset, download — tables for people, `--json` for scripts."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from tests.client.conftest import SdkTenant
from tests.client.test_data_science import planted
from tests.conftest import PASSWORD
from vigil.cli import app as cli


class Vigil:
    """`vigil …` as a user types it, with the server and a private config directory in the environment."""

    def __init__(self, url: str, config: Path) -> None:
        self.env = {"VIGIL_URL": url, "VIGIL_CONFIG_DIR": str(config), "COLUMNS": "200"}
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0) -> str:
        result = self.runner.invoke(cli, list(args), env=self.env)
        assert result.exit_code == code, result.output
        return result.output

    def json(self, *args: str) -> Any:
        result = self.runner.invoke(cli, [*args, "--json"], env=self.env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def vigil(server_url: str, sdk_tenant: SdkTenant, tmp_path: Path) -> Vigil:
    shell = Vigil(server_url, tmp_path / "config")
    email = sdk_tenant.analyst.me()["user"]["email"]
    assert "logged in" in shell("login", "--email", email, "--password", PASSWORD)
    return shell


def test_version_and_help_are_clean() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--version"]).output.startswith("vigil ")
    help_text = runner.invoke(cli, ["datasets", "--help"]).output
    assert "<bool>" not in help_text
    assert "upload" in help_text


def test_the_whole_flow_from_the_command_line(vigil: Vigil, tmp_path: Path) -> None:
    credentials = tmp_path / "config" / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    csv = tmp_path / "readings.csv"
    planted().write_csv(csv)
    dataset = vigil.json("datasets", "upload", str(csv), "--name", "readings")
    assert (dataset["rows"], dataset["columns"]) == (300, 3)
    assert dataset["id"] in [d["id"] for d in vigil.json("datasets", "list")]
    assert "readings" in vigil("datasets", "show", dataset["id"])
    detector = vigil.json(
        "detectors", "create", "--name", "cli", "--algorithm", "iforest", "--contamination", "0.02",
        "--param", "random_state=0",
    )  # fmt: skip
    trained = vigil.json("detectors", "train", detector["id"], "--dataset", dataset["id"])
    assert trained["status"] == "succeeded"
    assert vigil.json("jobs", "wait", trained["id"])["status"] == "succeeded"
    found = vigil.json("detectors", "detect", detector["id"], "--file", str(csv), "-o", str(tmp_path / "s.csv"))
    assert set(found["anomalous_rows"]) >= {295, 296, 297, 298, 299}
    assert pl.read_csv(tmp_path / "s.csv").columns == ["a", "b", "c", "score", "is_anomaly", "percentile", "imputed"]
    stored = vigil.json(
        "detectors", "detect", detector["id"], "--dataset", dataset["id"], "-o", str(tmp_path / "r.csv")
    )
    assert stored["total"] == 300
    assert pl.read_csv(tmp_path / "r.csv").height == 300
    vigil("datasets", "download", dataset["id"], "-o", str(tmp_path / "back.csv"))
    assert pl.read_csv(tmp_path / "back.csv").shape == (300, 3)


def test_errors_are_one_readable_line_and_an_exit_code(vigil: Vigil) -> None:
    missing = vigil("datasets", "show", "ds_missing", code=1)
    assert "404" in missing
    assert "Traceback" not in missing
    unreachable = Vigil("http://127.0.0.1:9", vigil.env["VIGIL_CONFIG_DIR"] + "-none")
    unreachable.env["VIGIL_TOKEN"] = "x"
    assert "cannot reach" in unreachable("jobs", "show", "job_x", code=3)


def test_a_narrow_non_terminal_table_keeps_ids_whole(vigil: Vigil, tmp_path: Path) -> None:
    # CI's logs and pipes: 80 columns, no terminal. An id folded over two lines cannot be copied.
    csv = tmp_path / "narrow.csv"
    planted().write_csv(csv)
    uploaded = [
        vigil.json("datasets", "upload", str(csv), "--name", f"a-long-dataset-name-{i}")["id"] for i in range(3)
    ]
    vigil.env["COLUMNS"] = "80"
    table = vigil("datasets", "list")
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 80
    for dataset_id in uploaded:
        assert any(dataset_id in line for line in lines), f"{dataset_id} is not whole on any line:\n{table}"
    shown = vigil("datasets", "show", uploaded[0])
    assert any(uploaded[0] in line for line in shown.splitlines()), shown
