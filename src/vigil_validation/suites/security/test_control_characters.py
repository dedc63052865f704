"""Names are printable: ESC, CR, LF and NUL (terminal escapes, forged log lines, truncation) are refused with a 422
problem in every name a client gives — datasets, detectors, streams, API keys — and nothing is stored."""

from __future__ import annotations

import pytest

from vigil_validation.checks import assert_problem
from vigil_validation.plugin import ProvisionedTenant
from vigil_validation.suites.security.attacks import API, Recorder, record_attack

CONTROLS = {"esc": "x\x1b[2J\x1b[31mred", "crlf": "x\r\nINFO forged log line", "lf": "x\nnext", "nul": "x\x00hidden"}


@pytest.mark.parametrize("kind", sorted(CONTROLS))
def test_control_characters_in_names_are_refused(tenant: ProvisionedTenant, kind: str, record: Recorder) -> None:
    name = CONTROLS[kind]
    attempts = {
        "dataset-upload": tenant.analyst.send(
            "POST", f"{API}/datasets", content=b"a\n1\n", params={"name": name}, headers={"Content-Type": "text/csv"}
        ),
        "detector": tenant.analyst.send("POST", f"{API}/detectors", json={"name": name, "algorithm": "iforest"}),
        "stream": tenant.analyst.send("POST", f"{API}/streams", json={"name": name, "features": ["a"]}),
        "api-key": tenant.admin.send("POST", f"{API}/api-keys", json={"name": name, "scopes": ["read-only"]}),
    }
    for what, response in attempts.items():
        assert_problem(response, 422)
        record_attack(record, "control-characters", f"{what}-{kind}", response)
    assert tenant.viewer.send("GET", f"{API}/datasets").json()["items"] == []
    assert tenant.viewer.send("GET", f"{API}/detectors").json()["items"] == []
