"""The completed OpenAPI document (web/contract.py): every error an operation can answer with is documented as a
problem, links point at real operations and parameters, and no reference dangles."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from vigil.web.contract import PROBLEM_MEDIA_TYPE, operations

Document = dict[str, Any]


@pytest.fixture
def document(client: TestClient) -> Document:
    served: Document = client.get("/openapi.json").json()
    return served


def test_every_api_operation_documents_its_problems(document: Document) -> None:
    for path, method, operation in operations(document):
        responses = operation["responses"]
        if path.startswith("/api/v1/"):
            assert {"401", "422", "429", "503"} <= set(responses), f"{method.upper()} {path}: {sorted(responses)}"
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= set(responses), f"{method.upper()} {path}"
        for status, response in responses.items():
            if int(status) >= 400:
                assert set(response["content"]) == {PROBLEM_MEDIA_TYPE}, f"{method.upper()} {path} {status}"


def test_no_reference_dangles(document: Document) -> None:
    schemas = document["components"]["schemas"]
    text = json.dumps(document)
    assert "$defs" not in text
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs <= set(schemas), sorted(refs - set(schemas))


def test_links_name_real_operations_and_their_parameters(document: Document) -> None:
    by_id = {op["operationId"]: (path, op) for path, _method, op in operations(document)}
    links = 0
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            for name, link in response.get("links", {}).items():
                links += 1
                assert link["operationId"] in by_id, f"{method.upper()} {path} {status} → {name}"
                target_path, target = by_id[link["operationId"]]
                declared = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
                assert set(link["parameters"]) <= declared, f"{name}: {link['parameters']} vs {target_path}"
    assert links >= 40, "the created resources lost their links"


def test_a_created_dataset_links_to_its_rows(document: Document) -> None:
    created = document["paths"]["/api/v1/datasets"]["post"]["responses"]["201"]
    assert created["links"]["GET_rows"]["parameters"] == {"dataset_id": "$response.body#/id"}
    training = document["paths"]["/api/v1/detectors/{detector_id}/train"]["post"]["responses"]["202"]
    assert training["links"]["GET_jobs_job_id"]["parameters"] == {"job_id": "$response.body#/id"}


def _integers(schema: Any) -> list[Document]:
    if not isinstance(schema, dict):
        return []
    if "anyOf" in schema:
        return [found for branch in schema["anyOf"] for found in _integers(branch)]
    return [schema] if schema.get("type") == "integer" else []


def test_every_integer_parameter_is_bounded(document: Document) -> None:
    """A version, offset or limit past any real one was a 500 (SQLite overflow, polars slice): refused up front."""
    unbounded = [
        f"{method.upper()} {path} {parameter['name']}"
        for path, method, operation in operations(document)
        for parameter in operation.get("parameters", [])
        for integer in _integers(parameter.get("schema"))
        if "maximum" not in integer
    ]
    assert unbounded == []


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ("CompareRequest", "a"),
        ("CompareRequest", "b"),
        ("AnalysisRequest", "detector_version"),
        ("StreamCreate", "model_version"),
    ],
)
def test_every_version_named_in_a_body_is_bounded(document: Document, schema: str, field: str) -> None:
    integers = _integers(document["components"]["schemas"][schema]["properties"][field])
    assert integers
    assert all("maximum" in integer for integer in integers)


def test_query_strings_fit_in_a_request_head(document: Document) -> None:
    """The HTTP server refuses a request head past 80 KB with a bare 400 before the app sees it: no query parameter
    may be long enough to get there (4-byte characters, percent-encoded: 12 bytes each)."""
    for path, method, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query":
                continue
            lengths = [b.get("maxLength", 0) for b in parameter["schema"].get("anyOf", [parameter["schema"]])]
            assert max(lengths) * 12 <= 32 * 1024, f"{method.upper()} {path} {parameter['name']}: {lengths}"
