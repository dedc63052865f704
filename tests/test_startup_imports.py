"""Start-up pays only for what serving needs: the scientific libraries (seconds of imports each, tens of seconds on
a loaded machine) are imported on first use or by the warm-up thread after start, never by importing the app."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from vigil.app import create_app

DEFERRED = ("scipy", "sklearn", "matplotlib", "pyod", "river", "numba")


def test_importing_the_app_leaves_the_scientific_libraries_for_later() -> None:
    code = f"import sys, vigil.app; print(' '.join(m for m in {DEFERRED!r} if m in sys.modules))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert imported.split() == []


def test_the_warm_up_imports_them() -> None:
    code = (
        "import sys; from vigil import analysis, ml; ml.warm_up(); analysis.warm_up(); "
        f"print(' '.join(m for m in {DEFERRED[:4]!r} if m not in sys.modules))"
    )
    missing = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert missing.split() == []


@pytest.mark.parametrize("warm", [True, False])
def test_metrics_say_when_the_warm_up_is_over(tmp_path: Path, warm: bool) -> None:
    """A benchmark (or an operator) waits for this before measuring: the imports hold the interpreter lock."""
    with TestClient(create_app(make_settings(tmp_path / "data", warm_imports=warm))) as client:
        deadline = time.monotonic() + 120
        while "vigil_detector_libraries_warm 1.0" not in (text := client.get("/metrics").text):
            if not warm or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert f"vigil_detector_libraries_warm {float(warm)}" in text


def test_the_cli_starts_without_plotting_or_tables() -> None:
    """Every `vigil` command imports the CLI; only a validation run's report draws (matplotlib: ~0.2 s of each
    command's start otherwise), only a command that reads or writes a table needs polars, pyarrow or numpy (~0.7 s),
    and only a validation run needs pytest (~0.3 s)."""
    heavy = ("matplotlib", "polars", "pyarrow", "pandas", "numpy", "pytest")
    code = f"import sys, vigil.cli; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert imported.split() == []
