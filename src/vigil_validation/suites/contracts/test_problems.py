"""Every error class is an RFC 9457 problem (`application/problem+json` with type, title, status, detail and a
request id) that leaks no internals."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant


@pytest.mark.smoke
def test_unknown_route_is_404(anonymous: VigilClient) -> None:
    assert_problem(anonymous.send("GET", "/api/v1/no-such-route"), 404)


def test_wrong_method_is_405_with_allow(anonymous: VigilClient) -> None:
    response = anonymous.send("PUT", "/health")
    assert_problem(response, 405)
    assert "GET" in response.headers.get("allow", ""), response.headers


@pytest.mark.smoke
def test_missing_credentials_are_401(anonymous: VigilClient) -> None:
    response = anonymous.send("GET", "/api/v1/datasets")
    assert_problem(response, 401)
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")


def test_viewer_writing_is_403(tenant: ProvisionedTenant) -> None:
    response = tenant.viewer.send(
        "POST", "/api/v1/detectors", json={"name": "nope", "algorithm": "iforest", "contamination": 0.1}
    )
    body = assert_problem(response, 403)
    assert "viewer" in body["detail"] or "permission" in body["detail"], body


def test_unknown_and_foreign_ids_are_the_same_404(tenant_factory: Callable[[], ProvisionedTenant]) -> None:
    owner, stranger = tenant_factory(), tenant_factory()
    dataset = owner.analyst.datasets.upload(b"x,y\n1,2\n3,4\n", name="private")
    unknown = assert_problem(stranger.viewer.send("GET", "/api/v1/datasets/ds_00000000000000000000000000"), 404)
    foreign = assert_problem(stranger.viewer.send("GET", f"/api/v1/datasets/{dataset['id']}"), 404)
    assert foreign["type"] == unknown["type"]
    assert foreign["title"] == unknown["title"]


def test_detect_before_training_is_409(tenant: ProvisionedTenant) -> None:
    detector = tenant.analyst.detectors.create(name="untrained", algorithm="iforest", contamination=0.1)
    response = tenant.analyst.send("POST", f"/api/v1/detectors/{detector['id']}/detect", json={"records": [{"a": 1.0}]})
    assert_problem(response, 409)


def test_json_body_over_the_limit_is_413(tenant: ProvisionedTenant, validation_config: ValidationConfig) -> None:
    """One byte over the JSON body limit (settings `max_json_body_bytes`) on a JSON route is refused whole."""
    limit = validation_config.contracts.json_body_limit_bytes
    prefix = b'{"name": "big", "algorithm": "iforest", "description": "'
    suffix = b'"}'
    body = prefix + b"x" * (limit + 1 - len(prefix) - len(suffix)) + suffix
    assert len(body) == limit + 1
    response = tenant.analyst.send(
        "POST", "/api/v1/detectors", content=body, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413)
    assert not tenant.viewer.detectors.list()["items"], "an oversized request created something"


def test_wrong_upload_content_type_is_415(tenant: ProvisionedTenant) -> None:
    response = tenant.analyst.send(
        "POST", "/api/v1/datasets", content=b"<rows/>", headers={"Content-Type": "application/xml"}
    )
    body = assert_problem(response, 415)
    assert "text/csv" in json.dumps(body), body


@pytest.mark.smoke
def test_invalid_input_is_422_with_field_errors(tenant: ProvisionedTenant) -> None:
    hostile = "<script>" + "z" * 3000
    response = tenant.analyst.send(
        "POST", "/api/v1/detectors", json={"name": "", "algorithm": "iforest", "contamination": hostile}
    )
    body = assert_problem(response, 422)
    fields = {str(error["loc"][-1]) for error in body["errors"]}
    assert {"name", "contamination"} <= fields, body["errors"]
    assert all(error.get("msg") for error in body["errors"]), body["errors"]
    assert hostile not in response.text, "the error echoes the offending value"


def test_bad_query_parameter_is_422(tenant: ProvisionedTenant) -> None:
    body = assert_problem(tenant.viewer.send("GET", "/api/v1/datasets", params={"limit": "many"}), 422)
    assert any(str(error["loc"][-1]) == "limit" for error in body["errors"]), body
