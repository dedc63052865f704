"""Finding 9: one printable-name rule (`vigil.core.names`) for every name field — ESC, CR, LF, NUL and friends are
refused (422) wherever a name is given, and nothing is stored."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Tenant, bearer, login
from vigil.core.errors import InvalidInput
from vigil.core.names import Name, printable_name, printable_part

HOSTILE = ["esc\x1b[31mred", "two\r\nlines", "nul\x00byte", "tab\there", "del\x7f", "c1\x85next", "bidi\u202etxt.exe"]


@pytest.mark.parametrize("value", HOSTILE)
def test_the_rule_refuses_controls(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Name).validate_python(value)
    with pytest.raises(InvalidInput):
        printable_name(value, loc=["query", "name"])


def test_the_rule_keeps_ordinary_unicode() -> None:
    assert TypeAdapter(Name).validate_python("  Capteurs d’usine — été 😀  ") == "Capteurs d’usine — été 😀"
    assert printable_part("report\x1b\x00.2026") == "report.2026"


@pytest.mark.parametrize("value", ["esc\x1b[2J", "line\nfeed", "cr\rhere", "nul\x00"])
def test_every_name_field_refuses_control_characters(client: TestClient, tenant: Tenant, value: str) -> None:
    dataset = client.post(
        "/api/v1/datasets",
        params={"name": "ok"},
        content=b"a,b\n1,2\n",
        headers={**tenant.analyst, "Content-Type": "text/csv"},
    ).json()
    root = bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    attempts = {
        "dataset upload": client.post(
            "/api/v1/datasets",
            params={"name": value},
            content=b"a,b\n1,2\n",
            headers={**tenant.analyst, "Content-Type": "text/csv"},
        ),
        "dataset rename": client.patch(
            f"/api/v1/datasets/{dataset['id']}", json={"name": value}, headers=tenant.analyst
        ),
        "detector": client.post("/api/v1/detectors", json={"name": value, "algorithm": "ecod"}, headers=tenant.analyst),
        "stream": client.post("/api/v1/streams", json={"name": value, "features": ["a"]}, headers=tenant.analyst),
        "api key": client.post("/api/v1/api-keys", json={"name": value, "scopes": ["read-only"]}, headers=tenant.admin),
        "tenant": client.post("/api/v1/tenants", json={"name": value}, headers=root),
    }
    assert {what: r.status_code for what, r in attempts.items()} == dict.fromkeys(attempts, 422)
    names = [d["name"] for d in client.get("/api/v1/datasets", headers=tenant.viewer).json()["items"]]
    assert names == ["ok"]
    assert client.get("/api/v1/detectors", headers=tenant.viewer).json()["items"] == []
