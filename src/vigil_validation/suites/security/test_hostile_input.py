"""Hostile input: SQL and NoSQL injection strings, path traversal in names and ids, oversized and deeply nested
JSON, invalid UTF-8, formula injection — answered with 4xx (never 5xx), nothing stored beyond the inert data
itself, and the service unharmed afterwards."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant
from vigil_validation.suites.security.attacks import API, Recorder, record_attack

SQL_INJECTION = (
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    '" OR 1=1 --',
    "1; SELECT pg_sleep(5)",
    "' UNION SELECT email, password_hash FROM users --",
    "admin'--",
)
NOSQL_INJECTION: tuple[Any, ...] = ({"$ne": None}, {"$gt": ""}, {"$where": "sleep(1000)"}, ["$in", []])
TRAVERSAL = (
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "....//....//etc/passwd",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
)
FORMULAS = ('=HYPERLINK("http://evil.example","x")', "+SUM(1+1)", "-2+3+cmd|' /C calc'!A0", "@SUM(1)", "=1+1")


def _no_5xx(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert_problem(response, response.status_code)


def test_injection_in_login(anonymous: VigilClient, record: Recorder) -> None:
    for n, payload in enumerate(SQL_INJECTION):
        for body in ({"email": payload, "password": payload}, {"email": f"a{n}@example.com", "password": payload}):
            response = anonymous.send("POST", f"{API}/auth/token", json=body, authenticated=False)
            assert response.status_code in (401, 422), response.text
            _no_5xx(response, str(body))
        record_attack(record, "injection", f"sql-login-{n}", response)
    for n, payload in enumerate(NOSQL_INJECTION):
        response = anonymous.send(
            "POST", f"{API}/auth/token", json={"email": payload, "password": payload}, authenticated=False
        )
        assert response.status_code == 422, response.text
        record_attack(record, "injection", f"nosql-login-{n}", response)


def test_injection_and_traversal_in_names_are_inert_data(tenant: ProvisionedTenant, record: Recorder) -> None:
    """A name is data: stored verbatim (or refused), never run, never a path; other data is untouched."""
    before = {d["id"] for d in tenant.viewer.datasets.iter_all()}
    made = []
    for n, name in enumerate((*SQL_INJECTION, *TRAVERSAL, "nul\x00byte")):
        response = tenant.analyst.send(
            "POST",
            f"{API}/datasets",
            content=b"a,b\n1,2\n",
            params={"name": name},
            headers={"Content-Type": "text/csv"},
        )
        _no_5xx(response, f"dataset named {name!r}")
        if response.status_code == 201:
            made.append(response.json()["id"])
            stored = tenant.viewer.datasets.get(response.json()["id"])["name"]
            assert "\x00" not in stored, "a NUL character was stored"
            assert stored == name.strip() or "\x00" in name, (name, stored)
        record_attack(record, "injection", f"dataset-name-{n}", response)
        detector = tenant.analyst.send("POST", f"{API}/detectors", json={"name": name, "algorithm": "iforest"})
        _no_5xx(detector, f"detector named {name!r}")
    assert {d["id"] for d in tenant.viewer.datasets.iter_all()} == before | set(made)
    assert tenant.admin.send("GET", f"{API}/users").status_code == 200  # the users table is still there


def test_hostile_ids_and_query_parameters(tenant: ProvisionedTenant, record: Recorder) -> None:
    for n, hostile in enumerate((*TRAVERSAL, *SQL_INJECTION, "%00", "a" * 5000)):
        for path in ("/datasets/{}", "/detectors/{}", "/jobs/{}", "/users/{}", "/api-keys/{}"):
            response = tenant.admin.send("GET" if "api-keys" not in path else "DELETE", API + path.format(hostile))
            assert response.status_code in (400, 404, 405, 414, 422), (path, hostile, response.status_code)
            _no_5xx(response, path.format(hostile))
        record_attack(record, "injection", f"id-{n}", response)
    for params in ({"cursor": "' OR 1=1 --"}, {"limit": "1; DROP TABLE datasets"}, {"limit": "-1"}, {"limit": "10**9"}):
        response = tenant.viewer.send("GET", f"{API}/datasets", params=params)
        assert_problem(response, 422)
        record_attack(record, "injection", f"query-{next(iter(params))}", response)


def test_oversized_nested_and_malformed_bodies(
    tenant: ProvisionedTenant, validation_config: ValidationConfig, record: Recorder
) -> None:
    limit = validation_config.contracts.json_body_limit_bytes
    bodies: dict[str, bytes] = {
        "oversized-json": b'{"name": "' + b"x" * limit + b'"}',
        "deeply-nested-array": b"[" * 100_000 + b"]" * 100_000,
        "deeply-nested-object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "invalid-utf8": b'{"name": "\xff\xfe\xfa", "scopes": ["detect"]}',
        "truncated-json": b'{"name": "x", "scopes": ["det',
        "duplicate-keys-smuggling": b'{"name": "x", "scopes": ["detect"], "scopes": ["users:manage"]}',
        "unknown-fields": b'{"name": "x", "scopes": ["detect"], "tenant_id": "tnt_other", "is_admin": true}',
    }
    before = tenant.admin.send("GET", f"{API}/api-keys").json()["items"]
    for name, body in bodies.items():
        response = tenant.admin.send(
            "POST", f"{API}/api-keys", content=body, headers={"Content-Type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:200])
        _no_5xx(response, name)
        record_attack(record, "hostile-body", name, response)
    assert tenant.admin.send("GET", f"{API}/api-keys").json()["items"] == before  # nothing stored


@pytest.mark.parametrize("media", ["text/csv", "application/json"])
def test_invalid_utf8_uploads(tenant: ProvisionedTenant, media: str, record: Recorder) -> None:
    body = b"a,b\n\xff\xfe,\xc3\x28\n" if media == "text/csv" else b'[{"a": "\xff\xfe"}]'
    response = tenant.analyst.send(
        "POST", f"{API}/datasets", content=body, params={"name": "bad-utf8"}, headers={"Content-Type": media}
    )
    _no_5xx(response, f"invalid UTF-8 {media}")
    assert response.status_code in (201, 400, 415, 422), response.text
    record_attack(record, "hostile-body", f"invalid-utf8-upload-{media.split('/')[1]}", response)


def test_formula_injection_stays_inert(tenant: ProvisionedTenant, record: Recorder) -> None:
    """Cells a spreadsheet would run come back as plain JSON strings; a CSV export, if offered, defuses them."""
    csv = "label,note\n" + "".join(f'{i},"{f.replace(chr(34), chr(34) * 2)}"\n' for i, f in enumerate(FORMULAS))
    dataset = tenant.analyst.datasets.upload(csv.encode(), name="formulas")
    rows = tenant.viewer.datasets.rows(dataset["id"])["rows"]
    assert [r["note"] for r in rows] == list(FORMULAS)  # data is kept exactly; JSON is not a spreadsheet
    export = tenant.viewer.send("GET", f"{API}/datasets/{dataset['id']}/rows", headers={"Accept": "text/csv"})
    _no_5xx(export, "rows as CSV")
    if export.headers.get("content-type", "").startswith("text/csv"):
        for formula in FORMULAS:
            assert f"\n{formula}" not in export.text, formula
            assert f",{formula}" not in export.text, formula
        record("attack:formula-injection:csv-export-neutralised", 1, "bool")
    else:
        record("attack:formula-injection:stored-inert-json", export.status_code, "HTTP status")


def test_errors_never_echo_secrets_or_internals(anonymous: VigilClient, tenant: ProvisionedTenant) -> None:
    secret = "S3cret-passphrase-that-must-not-leak"
    for response in (
        anonymous.send("POST", f"{API}/auth/token", json={"email": "x@example.com", "password": secret}),
        anonymous.send("POST", f"{API}/auth/token", json={"email": secret, "password": secret}),
        anonymous.send("POST", f"{API}/auth/refresh", json={"refresh_token": secret, "extra": secret}),
        tenant.admin.send("POST", f"{API}/users", json={"email": "a@b.example", "password": secret, "role": "god"}),
    ):
        assert secret not in response.text, response.text
        _no_5xx(response, "secret echo")


def test_security_headers(tenant: ProvisionedTenant, anonymous: VigilClient) -> None:
    for response in (tenant.viewer.send("GET", f"{API}/me"), anonymous.send("GET", f"{API}/me"), anonymous.health()):
        headers = response.headers if isinstance(response, httpx.Response) else None
        if headers is None:
            continue
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
    authenticated = tenant.viewer.send("GET", f"{API}/me")
    assert "no-store" in authenticated.headers["cache-control"]
