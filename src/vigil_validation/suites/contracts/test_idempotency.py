"""`Idempotency-Key`: a retried POST returns the first result and does the work once."""

from __future__ import annotations

import uuid

import pytest

from vigil_validation.checks import assert_problem
from vigil_validation.plugin import ProvisionedTenant


@pytest.mark.smoke
def test_retried_create_returns_the_first_result(tenant: ProvisionedTenant) -> None:
    key = f"validation-{uuid.uuid4().hex}"
    body = {"name": "once", "algorithm": "iforest", "contamination": 0.1}
    headers = {"Idempotency-Key": key}
    first = tenant.analyst.send("POST", "/api/v1/detectors", json=body, headers=headers)
    assert first.status_code == 201, first.text
    # The retry is sent only after the first response arrived, so the first request is over: "in progress" is wrong.
    retry = tenant.analyst.send("POST", "/api/v1/detectors", json=body, headers=headers)
    assert retry.status_code == 201, f"a retry after the first response answered {retry.status_code}: {retry.text}"
    assert retry.json() == first.json()
    named = [d for d in tenant.viewer.detectors.iter_all() if d["name"] == "once"]
    assert [d["id"] for d in named] == [first.json()["id"]], "the retry created a duplicate"


def test_retried_upload_is_not_stored_twice(tenant: ProvisionedTenant) -> None:
    key = f"validation-{uuid.uuid4().hex}"
    first = tenant.analyst.datasets.upload(b"a\n1\n2\n", name="upload-once", idempotency_key=key)
    again = tenant.analyst.datasets.upload(b"a\n1\n2\n", name="upload-once", idempotency_key=key)
    assert again["id"] == first["id"]
    assert [d["id"] for d in tenant.viewer.datasets.iter_all()] == [first["id"]]


def test_key_reused_with_another_request_is_refused(tenant: ProvisionedTenant) -> None:
    key = f"validation-{uuid.uuid4().hex}"
    tenant.analyst.detectors.create(name="first", algorithm="iforest", idempotency_key=key)
    response = tenant.analyst.send(
        "POST",
        "/api/v1/detectors",
        json={"name": "second", "algorithm": "iforest"},
        headers={"Idempotency-Key": key},
    )
    assert_problem(response, 422)
    assert [d["name"] for d in tenant.viewer.detectors.iter_all()] == ["first"]


def test_keys_are_scoped_to_the_caller(tenant: ProvisionedTenant) -> None:
    """The same key from two users is two requests: one user's key never replays another's response."""
    key = f"validation-{uuid.uuid4().hex}"
    mine = tenant.analyst.detectors.create(name="shared-key", algorithm="iforest", idempotency_key=key)
    theirs = tenant.admin.detectors.create(name="shared-key", algorithm="iforest", idempotency_key=key)
    assert mine["id"] != theirs["id"]
