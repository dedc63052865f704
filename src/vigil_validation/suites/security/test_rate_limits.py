"""Rate limiting: `RateLimit-*` headers on answers, 429 problem with `Retry-After` once a limit is spent, and
recovery after the window. Proven on an API key's own limit (a tenant admin sets it), so the server's generous
defaults need not be lowered for the run."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem
from vigil_validation.plugin import ProvisionedTenant
from vigil_validation.suites.security.attacks import API, Recorder, record_attack

LIMIT, WINDOW_S = 5, 3


@pytest.mark.smoke
def test_429_with_retry_after_then_recovery(
    tenant: ProvisionedTenant, client_factory: Callable[[], VigilClient], record: Recorder
) -> None:
    created = tenant.admin.send(
        "POST",
        f"{API}/api-keys",
        json={"name": "throttled", "scopes": ["read-only"], "rate_limit": {"requests": LIMIT, "window_s": WINDOW_S}},
    )
    assert created.status_code == 201, created.text
    machine = client_factory()
    machine.api_key = created.json()["key"]

    first = machine.send("GET", f"{API}/datasets")
    assert first.status_code == 200
    assert first.headers["RateLimit-Limit"] == str(LIMIT)
    assert int(first.headers["RateLimit-Remaining"]) == LIMIT - 1
    accepted = 1
    while True:
        response = machine.send("GET", f"{API}/datasets")
        if response.status_code == 429:
            break
        assert response.status_code == 200
        accepted += 1
        assert accepted <= LIMIT, "more requests accepted than the limit allows"
    assert_problem(response, 429, "rate-limited")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW_S
    assert response.headers["RateLimit-Remaining"] == "0"
    record("rate-limit:accepted-before-429", accepted, "requests")
    record_attack(record, "rate-limit", "burst-beyond-limit", response)
    time.sleep(retry_after + 0.2)
    recovered = machine.send("GET", f"{API}/datasets")
    assert recovered.status_code == 200, recovered.text
    record("rate-limit:recovered-after", retry_after, "s")


def test_authenticated_answers_carry_the_policy(tenant: ProvisionedTenant) -> None:
    response = tenant.viewer.send("GET", f"{API}/datasets")
    assert response.status_code == 200
    for header in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
        assert header in response.headers, header
    assert int(response.headers["RateLimit-Limit"]) > 0
