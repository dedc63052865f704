"""The seed's entry point, kept working: `python tests/integration_testing/run_integration_tests.py all|smoke|
security|suite --suite NAME [--config FILE] [--target URL] …` is `vigil validate …` (same runner, same exit codes)."""

from __future__ import annotations

from vigil_validation.cli import app

if __name__ == "__main__":
    app(prog_name="run_integration_tests.py")
