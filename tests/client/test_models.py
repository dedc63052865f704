"""The SDK's typed results against the API's OpenAPI document (`docs/openapi.json`, itself checked against the code
by `tests/test_openapi.py`): each model has the same members as the component it mirrors, with compatible types,
and requires nothing the server may leave out — so a change on either side that makes them drift fails here."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from vigil.client.models import MODELS, ApiModel, Dataset, Job, Page

COMPONENTS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "docs" / "openapi.json").read_text(encoding="utf-8")
)["components"]["schemas"]
MIRRORED = {model.openapi_name: model for model in MODELS}


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def shape(schema: dict[str, Any], components: dict[str, Any], names: dict[str, str]) -> Any:
    """A comparable summary of a JSON schema: its type(s), array items, enum, or the component it names.

    `names` maps a `$ref`'s component name to the name it is compared under (the client's models are named after
    the server's components they mirror)."""
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        return frozenset(shape(branch, components, names) for branch in branches)
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        target = components[name]
        if target.get("type") == "object" and "properties" in target:
            return ("model", names.get(name, name))
        return shape(target, components, names)
    kind = schema.get("type")
    if kind == "array":
        return ("array", shape(schema.get("items", {}), components, names))
    if kind == "object":
        extra = schema.get("additionalProperties")
        return ("object", shape(extra, components, names) if isinstance(extra, dict) and extra else "any")
    if "enum" in schema:
        return (kind, tuple(sorted(schema["enum"])))
    if kind is None:
        return "any"
    return (kind, schema.get("format"))


def compatible(client: Any, server: Any) -> bool:
    """Whether a value the server sends (`server` shape) always validates as the client's (`client` shape)."""
    if isinstance(server, frozenset):
        return all(any(compatible(c, s) for c in _options(client)) for s in server)
    if isinstance(client, frozenset):
        return any(compatible(c, server) for c in client)
    if client == "any" or client == server:
        return True
    if not (isinstance(client, tuple) and isinstance(server, tuple)):
        return False
    if client[0] == "object" and server[0] in ("object", "model"):
        # A free-form object on the client's side takes any object (a nested component it keeps as JSON).
        return client[1] == "any" or (server[0] == "object" and compatible(client[1], server[1]))
    if client[0] == "array" and server[0] == "array":
        return compatible(client[1], server[1])
    if client[0] == server[0] == "string":
        # An enum the server declares is a string to a client that does not enumerate it; one the client
        # enumerates must be the server's exactly.
        return not isinstance(client[1], tuple) or client[1] == server[1]
    return client[0] == "number" and server[0] == "integer"


def _options(value: Any) -> frozenset[Any]:
    return value if isinstance(value, frozenset) else frozenset({value})


def _client_schema(model: type[ApiModel]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.get("$defs", {})
    # The client's nested models compare under the name of the component each mirrors.
    names = {name: MIRRORED_BY_CLASS.get(name, name) for name in defs}
    return schema, defs, names


MIRRORED_BY_CLASS = {model.__name__: model.openapi_name for model in MODELS}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_each_model_mirrors_its_openapi_component(model: type[ApiModel]) -> None:
    assert model.openapi_name in COMPONENTS, f"{model.__name__}: no component {model.openapi_name!r} in the API"
    server = COMPONENTS[model.openapi_name]
    client, defs, names = _client_schema(model)
    server_props, client_props = server.get("properties", {}), client.get("properties", {})
    assert set(client_props) == set(server_props), (
        f"{model.__name__} vs {model.openapi_name}: only in the SDK {sorted(set(client_props) - set(server_props))}, "
        f"only in the API {sorted(set(server_props) - set(client_props))}"
    )
    # The SDK requires nothing the server may leave out (it may default what the server always sends).
    assert set(client.get("required", [])) <= set(server.get("required", [])), model.__name__
    mismatched = {}
    for name, server_schema in server_props.items():
        theirs = shape(server_schema, COMPONENTS, {})
        ours = shape(client_props[name], defs, names)
        if not compatible(ours, theirs):
            mismatched[name] = (ours, theirs)
    assert not mismatched, f"{model.__name__}: types drifted from {model.openapi_name}: {mismatched}"


def test_every_response_component_the_sdk_returns_is_mirrored() -> None:
    """Each component the SDK's methods return has a model here (so a new member there is checked above)."""
    for name in MIRRORED:
        assert name in COMPONENTS
    assert len(MIRRORED) == len(MODELS), "two models claim one component"


def test_the_comparison_notices_a_changed_type_a_new_member_and_a_new_enum_value() -> None:
    # The checker itself must be able to fail: a server that changed `progress` to a string, added a member, or
    # added a job status is not what the SDK's Job mirrors.
    server = json.loads(json.dumps(COMPONENTS["JobPublic"]))
    client, defs, names = _client_schema(Job)
    ours = shape(client["properties"]["progress"], defs, names)
    assert compatible(ours, shape(server["properties"]["progress"], COMPONENTS, {}))
    assert not compatible(ours, shape({"type": "string"}, COMPONENTS, {}))
    status = shape(client["properties"]["status"], defs, names)
    assert compatible(status, shape(server["properties"]["status"], COMPONENTS, {}))
    grown = {"type": "string", "enum": [*server["properties"]["status"]["enum"], "paused"]}
    assert not compatible(status, shape(grown, COMPONENTS, {}))
    # A member the server may send as null is not one the SDK may require non-null.
    assert not compatible(
        shape({"type": "string", "format": "date-time"}, COMPONENTS, {}),
        shape(server["properties"]["started_at"], COMPONENTS, {}),
    )


def test_results_read_like_the_json_they_came_from() -> None:
    body = {
        "id": "job_1",
        "kind": "train",
        "status": "succeeded",
        "progress": 100.0,
        "stage": "done",
        "subject_id": "det_1",
        "result": {"threshold": 0.5},
        "error": None,
        "attempts": 1,
        "created_at": "2026-01-01T00:00:00Z",
        "started_at": "2026-01-01T00:00:01Z",
        "finished_at": "2026-01-01T00:00:02Z",
        "eta_s": None,
        "added_later": 7,
    }
    job = Job.model_validate(body)
    assert job.done
    assert job.status == job["status"] == "succeeded"
    assert isinstance(job.created_at, datetime)
    assert job.get("result") == {"threshold": 0.5}
    assert job.get("missing", "x") == "x"
    assert "stage" in job
    assert "missing" not in job
    assert job["added_later"] == 7  # a member a newer server sent is kept
    with pytest.raises(KeyError):
        job["missing"]
    assert job.to_dict() == {**body, "created_at": "2026-01-01T00:00:00Z"}


def test_a_json_member_named_like_a_pydantic_method_keeps_its_name() -> None:
    column = {"name": "x", "kind": "numeric", "dtype": "Float64", "nullable": False}
    body = {
        "id": "ds_1",
        "name": "d",
        "description": None,
        "rows": 3,
        "columns": 1,
        "schema": [column],
        "size_bytes": 10,
        "source_format": "csv",
        "origin": {},
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    page = Page[Dataset].model_validate({"items": [body], "next_cursor": None})
    dataset = page.items[0]
    assert dataset["schema"][0]["name"] == "x"
    assert dataset.column_names == ["x"]
    assert dataset.to_dict()["schema"] == [column]
