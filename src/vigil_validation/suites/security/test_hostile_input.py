"""Hostile input: SQL and NoSQL injection strings, path traversal in names and ids, oversized and deeply nested
JSON, invalid UTF-8, formula injection — answered with 4xx (never 5xx), nothing stored beyond the inert data
itself, and the service unharmed afterwards."""

from __future__ import annotations

import csv
import io
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
# What a spreadsheet runs when a cell starts with it (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
API_CSP = "default-src 'none'"
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
    """Cells a spreadsheet would run are kept exactly as data (JSON rows), and the CSV download defuses them: each
    comes back with a leading apostrophe, so no cell of the file starts a formula (CWE-1236)."""
    csv_text = "label,note\n" + "".join(f'{i},"{f.replace(chr(34), chr(34) * 2)}"\n' for i, f in enumerate(FORMULAS))
    dataset = tenant.analyst.datasets.upload(csv_text.encode(), name="formulas")
    rows = tenant.viewer.datasets.rows(dataset["id"])["rows"]
    assert [r["note"] for r in rows] == list(FORMULAS)  # data is kept exactly; JSON is not a spreadsheet
    export = tenant.viewer.send("GET", f"{API}/datasets/{dataset['id']}/download", params={"format": "csv"})
    assert export.status_code == 200, export.text[:300]
    assert export.headers["content-type"].split(";")[0] == "text/csv", export.headers["content-type"]
    cells = list(csv.reader(io.StringIO(export.text)))
    assert cells[0] == ["label", "note"], cells[0]
    assert [row[1] for row in cells[1:]] == [f"'{formula}" for formula in FORMULAS], cells
    live = [cell for row in cells for cell in row if cell.startswith(FORMULA_STARTS)]
    assert not live, f"cells a spreadsheet would run: {live}"
    record_attack(record, "formula-injection", "csv-download-neutralised", export)


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


def _assert_hardened(response: httpx.Response, what: str, *, csp: str | None = API_CSP) -> None:
    headers = response.headers
    assert headers.get("x-content-type-options") == "nosniff", (what, dict(headers))
    assert headers.get("x-frame-options") == "DENY", (what, dict(headers))
    assert headers.get("referrer-policy") == "no-referrer", (what, dict(headers))
    assert headers.get("x-request-id"), (what, dict(headers))
    if csp is not None:
        policy = headers.get("content-security-policy", "")
        assert csp in policy, (what, policy)
        assert "frame-ancestors 'none'" in policy, (what, policy)
        assert "script-src" not in policy, (what, policy)  # nothing this API sends may run a script


def test_security_headers(tenant: ProvisionedTenant, anonymous: VigilClient, record: Recorder) -> None:
    """Every kind of answer carries the hardening headers, on real responses: JSON, a problem, an HTML report page
    (its own CSP still forbids scripts), and the interactive docs (which load their own scripts, so a looser CSP);
    anything answered to credentials is never cached."""
    dataset = tenant.analyst.datasets.upload(b"a,b\n1,2\n3,4\n5,6\n", name="headers")
    profiled = tenant.analyst.send("POST", f"{API}/datasets/{dataset['id']}/profile")
    assert profiled.status_code == 201, profiled.text[:300]
    answers = {
        "json": tenant.viewer.send("GET", f"{API}/me"),
        "problem": anonymous.send("GET", f"{API}/me", authenticated=False),
        "html-report": tenant.viewer.send("GET", f"{API}/datasets/{dataset['id']}/profile.html"),
        "health": anonymous.send("GET", "/health", authenticated=False),
    }
    assert answers["json"].status_code == 200, answers["json"].text[:300]
    assert_problem(answers["problem"], 401)
    assert answers["html-report"].status_code == 200, answers["html-report"].text[:300]
    assert answers["html-report"].headers["content-type"].startswith("text/html")
    for what, response in answers.items():
        _assert_hardened(response, what)
        record(f"attack:headers:{what}", response.status_code, "HTTP status")
    for what in ("json", "html-report"):  # sent with credentials
        assert "no-store" in answers[what].headers.get("cache-control", ""), (what, dict(answers[what].headers))
    assert "no-store" not in answers["health"].headers.get("cache-control", "")
    docs = anonymous.send("GET", "/docs", authenticated=False)
    assert docs.status_code == 200, docs.status_code
    _assert_hardened(docs, "docs", csp=None)
    assert "default-src 'none'" not in docs.headers.get("content-security-policy", "")  # it would break Swagger UI
    record("attack:headers:docs", docs.status_code, "HTTP status")
