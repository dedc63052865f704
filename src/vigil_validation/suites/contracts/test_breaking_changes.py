"""The served OpenAPI document against a baseline (`vigil validate suite --suite contracts --baseline OLD_SPEC.json`):
a client built against the baseline must keep working, so any breaking change fails; additive ones are reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vigil.client import VigilClient
from vigil_validation import handover, specdiff
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import Recorder


@pytest.mark.smoke
def test_served_document_keeps_the_baseline_contract(
    anonymous: VigilClient, validation_config: ValidationConfig, record: Recorder
) -> None:
    baseline_path = validation_config.contracts.baseline_spec
    if baseline_path is None:
        pytest.skip("no baseline document: pass --baseline OLD_SPEC.json to compare the served one with it")
    baseline = json.loads(Path(baseline_path).read_text(encoding="utf-8"))
    response = anonymous.send("GET", "/openapi.json", authenticated=False)
    assert response.status_code == 200, response.text
    changes = specdiff.diff(baseline, response.json())
    broken = specdiff.breaking(changes)
    additive = [c for c in changes if not c.breaking]
    record("breaking changes", len(broken))
    record("additive changes", len(additive))
    summary = handover.summary_path_from_env()
    if summary:  # every change, one a line, beside the run's reports
        (Path(summary).parent / "contract-changes.txt").write_text("".join(f"{c}\n" for c in changes), encoding="utf-8")
    listing = "\n".join(str(c) for c in broken[:60])
    assert not broken, f"{len(broken)} breaking change(s) against {baseline_path}:\n{listing}"
