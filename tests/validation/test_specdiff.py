"""The OpenAPI differ of the contracts suite: each kind of breaking change is caught, additive ones are not called
breaking, and a document compared with itself has no change."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from vigil_validation import specdiff

COMMITTED = Path(__file__).parent.parent.parent / "docs" / "openapi.json"


def document() -> dict[str, Any]:
    """A small API: create and read a widget; a widget has a name, a size and a colour."""
    widget_out = {
        "type": "object",
        "required": ["id", "name", "colour"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "colour": {"type": "string", "enum": ["red", "green"]},
            "size": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
    }
    widget_in = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "maxLength": 100},
            "colour": {"type": "string", "enum": ["red", "green"]},
            "size": {"type": "number", "minimum": 0},
        },
    }
    return {
        "openapi": "3.1.0",
        "components": {"schemas": {"WidgetIn": widget_in, "WidgetOut": widget_out}},
        "paths": {
            "/widgets": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WidgetIn"}}},
                    },
                    "responses": {
                        "201": {
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WidgetOut"}}}
                        },
                        "422": {"content": {"application/problem+json": {"schema": {"type": "object"}}}},
                    },
                },
                "get": {
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 500}},
                    ],
                    "responses": {"200": {"content": {"application/json": {"schema": {"type": "array"}}}}},
                },
            },
            "/widgets/{widget_id}": {
                "get": {
                    "parameters": [{"name": "widget_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/WidgetOut"}}}}
                    },
                }
            },
        },
    }


def changed(edit: Any) -> list[specdiff.Change]:
    old = document()
    new = copy.deepcopy(old)
    edit(new)
    return specdiff.diff(old, new)


def schemas(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = doc["components"]["schemas"]
    return result


BREAKING: dict[str, Any] = {
    "operation removed": lambda d: d["paths"]["/widgets/{widget_id}"].pop("get"),
    "response field removed": lambda d: schemas(d)["WidgetOut"]["properties"].pop("colour"),
    "response field may now be missing": lambda d: schemas(d)["WidgetOut"]["required"].remove("colour"),
    "response enum widened": lambda d: schemas(d)["WidgetOut"]["properties"]["colour"]["enum"].append("blue"),
    "response type widened": lambda d: schemas(d)["WidgetOut"]["properties"]["name"].update(type=["string", "null"]),
    "new required body field": lambda d: (
        schemas(d)["WidgetIn"]["properties"].update(shape={"type": "string"}),
        schemas(d)["WidgetIn"]["required"].append("shape"),
    ),
    "optional field became required": lambda d: schemas(d)["WidgetIn"]["required"].append("size"),
    "new required parameter": lambda d: d["paths"]["/widgets"]["get"]["parameters"].append(
        {"name": "owner", "in": "query", "required": True, "schema": {"type": "string"}}
    ),
    "request type narrowed": lambda d: schemas(d)["WidgetIn"]["properties"]["size"].update(type="integer"),
    "request enum narrowed": lambda d: schemas(d)["WidgetIn"]["properties"]["colour"]["enum"].remove("green"),
    "request bound tightened": lambda d: schemas(d)["WidgetIn"]["properties"]["name"].update(maxLength=50),
    "parameter bound tightened": lambda d: d["paths"]["/widgets"]["get"]["parameters"][0]["schema"].update(maximum=100),
    "request field no longer accepted": lambda d: schemas(d)["WidgetIn"]["properties"].pop("colour"),
    "request media type removed": lambda d: d["paths"]["/widgets"]["post"]["requestBody"]["content"].update(
        {"text/csv": d["paths"]["/widgets"]["post"]["requestBody"]["content"].pop("application/json")}
    ),
    "success status changed": lambda d: d["paths"]["/widgets"]["post"]["responses"].update(
        {"200": d["paths"]["/widgets"]["post"]["responses"].pop("201")}
    ),
    "error status removed": lambda d: d["paths"]["/widgets"]["post"]["responses"].pop("422"),
}

ADDITIVE: dict[str, Any] = {
    "operation added": lambda d: d["paths"]["/widgets/{widget_id}"].update(
        delete={"responses": {"204": {"description": "gone"}}}
    ),
    "response field added": lambda d: schemas(d)["WidgetOut"]["properties"].update(weight={"type": "number"}),
    "optional body field added": lambda d: schemas(d)["WidgetIn"]["properties"].update(note={"type": "string"}),
    "optional parameter added": lambda d: d["paths"]["/widgets"]["get"]["parameters"].append(
        {"name": "cursor", "in": "query", "schema": {"type": "string"}}
    ),
    "request enum widened": lambda d: schemas(d)["WidgetIn"]["properties"]["colour"]["enum"].append("blue"),
    "request bound relaxed": lambda d: schemas(d)["WidgetIn"]["properties"]["name"].update(maxLength=200),
    "request type widened": lambda d: schemas(d)["WidgetIn"]["properties"]["name"].update(type=["string", "null"]),
    "error status added": lambda d: d["paths"]["/widgets"]["post"]["responses"].update(
        {"409": {"content": {"application/problem+json": {"schema": {"type": "object"}}}}}
    ),
    "operation deprecated": lambda d: d["paths"]["/widgets"]["get"].update(deprecated=True),
}


@pytest.mark.parametrize("edit", BREAKING.values(), ids=BREAKING.keys())
def test_breaking_changes_are_caught(edit: Any) -> None:
    changes = changed(edit)
    assert specdiff.breaking(changes), f"not called breaking: {[str(c) for c in changes]}"


@pytest.mark.parametrize("edit", ADDITIVE.values(), ids=ADDITIVE.keys())
def test_additive_changes_are_reported_but_not_breaking(edit: Any) -> None:
    changes = changed(edit)
    assert changes, "the change was not seen at all"
    assert not specdiff.breaking(changes), [str(c) for c in changes]


def test_the_committed_document_has_no_change_against_itself() -> None:
    committed = json.loads(COMMITTED.read_text())
    assert specdiff.diff(committed, copy.deepcopy(committed)) == []


def test_a_removed_operation_in_the_real_document_is_named() -> None:
    old = json.loads(COMMITTED.read_text())
    new = copy.deepcopy(old)
    new["paths"]["/api/v1/datasets"].pop("post")
    assert [str(c) for c in specdiff.breaking(specdiff.diff(old, new))] == [
        "BREAKING: POST /api/v1/datasets: operation removed"
    ]
