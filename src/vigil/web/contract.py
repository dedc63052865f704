"""The served OpenAPI document, completed: what FastAPI derives from the routes says only how a request succeeds,
so this adds what every client meets as well — the RFC 9457 problems each operation can answer with, the
`Deprecation`/`Sunset` headers of deprecated operations, and links from a created resource to the operations that
use it next (what a client, or a stateful fuzzer, does with the `id` it just got).

Pure functions over the document (a dict), so they are tested without a server; `install_contract` hooks them into
the app's `openapi()`."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from vigil.web.deprecation import DeprecationHeadersMiddleware

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
API_PREFIX = "/api/v1/"
PUBLIC_OPERATIONS = {("post", "/api/v1/auth/token"), ("post", "/api/v1/auth/refresh")}
WRITE_METHODS = {"post", "put", "patch", "delete"}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

Document = dict[str, Any]

PROBLEM_SCHEMA: Document = {
    "title": "Problem",
    "description": "An RFC 9457 problem document. `type` is a documented URI (`GET /problems/{slug}`); extra members "
    "(`errors`, `quota`, `limit`, `used`, `retry_after_s`…) depend on the type.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "request_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"loc": {"type": "array", "items": {}}, "msg": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
# Why each status can happen; which operations can meet it is decided in `problem_statuses`.
PROBLEM_STATUSES: dict[int, str] = {
    400: "Malformed body (not parseable, nested too deeply)",
    401: "No valid credential",
    403: "The caller's role or key scope does not allow it, or a quota is exhausted",
    404: "No such resource in the caller's tenant (another tenant's id looks the same)",
    409: "Conflicts with the resource's state, or an `Idempotency-Key` request still in progress",
    413: "Body or decoded data over a limit",
    415: "Unsupported Content-Type or Content-Encoding",
    422: "Invalid input (`errors` names each field)",
    429: "Rate limit or quota window exceeded (Retry-After)",
    503: "A dependency (database, blob store, broker) is unavailable (Retry-After)",
}

DEPRECATION_HEADERS = {
    "Deprecation": {
        "description": "RFC 9745: when the operation was deprecated (`@` and a Unix time).",
        "schema": {"type": "string"},
    },
    "Sunset": {
        "description": "RFC 8594: the HTTP date after which the operation may stop answering.",
        "schema": {"type": "string"},
    },
}


def problem_statuses(method: str, path: str, operation: Document) -> set[int]:
    """The problem statuses an operation can answer with, from what it is: API or operational, read or write,
    with or without a body, public or authenticated."""
    if not path.startswith(API_PREFIX):
        # Operational routes: no authentication and no body; 404 only where a path names something.
        return {422, 404} if "{" in path else set()
    statuses = {401, 404, 422, 429, 503}
    if (method, path) not in PUBLIC_OPERATIONS:
        statuses.add(403)
    if method in WRITE_METHODS:
        statuses.add(409)
    if "requestBody" in operation:
        statuses |= {400, 413, 415}
    return statuses


def _problem_response(status: int, existing: Document | None) -> Document:
    fallback = PROBLEM_STATUSES.get(status, "A problem")
    description = (existing or {}).get("description") or fallback
    if description in ("Validation Error", "Successful Response"):
        description = fallback
    response: Document = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if status in (429, 503):
        response["headers"] = copy.deepcopy(_RETRY_AFTER)
    return response


def add_problems(document: Document) -> None:
    """Every error an operation can answer with, documented as what it is: `application/problem+json`."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = copy.deepcopy(PROBLEM_SCHEMA)
    for path, method, operation in operations(document):
        responses = operation.setdefault("responses", {})
        # …and the errors a route declared itself are problems too.
        declared = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
        for status in sorted(problem_statuses(method, path, operation) | declared):
            responses[str(status)] = _problem_response(status, responses.get(str(status)))
    # FastAPI's own shape of a validation error is never sent (web/problems.py answers 422 with a problem).
    for unused in ("HTTPValidationError", "ValidationError"):
        if not _referenced(document, f"#/components/schemas/{unused}"):
            schemas.pop(unused, None)


def hoist_definitions(document: Document) -> None:
    """A schema given whole in a route's `openapi_extra` carries its nested models as `$defs` while its references
    point at `#/components/schemas/…` (where FastAPI puts models): move them there, or the references dangle."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    stack: list[object] = [document.get("paths", {})]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for name, definition in node.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
                stack.append(definition)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def add_deprecation_headers(document: Document) -> None:
    """A deprecated operation says so in every answer (web/deprecation.py sets the headers)."""
    for _path, _method, operation in operations(document):
        if operation.get("deprecated"):
            for response in operation.get("responses", {}).values():
                response.setdefault("headers", {}).update(copy.deepcopy(DEPRECATION_HEADERS))


_PARAM = re.compile(r"\{([^}]+)\}")


def add_links(document: Document) -> None:
    """Links from an operation that creates a resource (a 201/202 answer with an `id`) to every operation whose path
    continues the creating path with that resource's id — `POST /datasets` → `GET /datasets/{dataset_id}/rows` —
    and from anything that answers with a job to the job's operations."""
    job_operations = [
        (path, method, op) for path, method, op in operations(document) if path.startswith("/api/v1/jobs/{")
    ]
    for path, method, operation in operations(document):
        for status in ("201", "202"):
            response = operation.get("responses", {}).get(status)
            if response is None or method != "post":
                continue
            schema_ref = _json_schema_ref(response)
            if schema_ref is None or "id" not in _schema(document, schema_ref).get("properties", {}):
                continue
            targets: list[tuple[str, str, Document]] = []
            if schema_ref == "#/components/schemas/JobPublic":
                targets = job_operations
            elif "{" not in path.removeprefix(API_PREFIX).split("/")[-1]:
                targets = [
                    (other, other_method, op)
                    for other, other_method, op in operations(document)
                    if _continues_with_id(path, other)
                ]
            links: Document = {}
            own = _PARAM.findall(path)
            for other, other_method, op in targets:
                if schema_ref == "#/components/schemas/JobPublic":
                    parameters = {"job_id": "$response.body#/id"}
                else:
                    parameters = {_PARAM.findall(other)[len(own)]: "$response.body#/id"}
                    # The creating path's own parameters carry over (a detector's versions under that detector).
                    parameters.update({p: f"$request.path.{p}" for p in own})
                links[_link_name(other_method, other, path)] = {
                    "operationId": op["operationId"],
                    "parameters": parameters,
                }
            if links:
                response["links"] = dict(sorted(links.items()))


def _continues_with_id(creator: str, other: str) -> bool:
    if not other.startswith(creator + "/{"):
        return False
    return len(_PARAM.findall(other)) >= len(_PARAM.findall(creator)) + 1


def _link_name(method: str, path: str, creator: str) -> str:
    """`GET`, `GET_rows`, `POST_versions_version_promote` (below the created resource); `GET_jobs_job_id` (a job)."""
    rest = path.removeprefix(creator) if path.startswith(creator + "/") else "/" + path.removeprefix(API_PREFIX)
    parts = [part.strip("{}") for part in rest.split("/")[1:]]
    if path.startswith(creator + "/"):
        parts = parts[1:]  # the created resource's own id
    return "_".join([method.upper(), *parts])


def _json_schema_ref(response: Document) -> str | None:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref")
    return ref if isinstance(ref, str) else None


def _schema(document: Document, ref: str) -> Document:
    found: Document = document.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1], {})
    return found


def _referenced(node: object, ref: str) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == ref or any(_referenced(v, ref) for v in node.values())
    if isinstance(node, list):
        return any(_referenced(v, ref) for v in node)
    return False


def operations(document: Document) -> list[tuple[str, str, Document]]:
    return [
        (path, method, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def complete(document: Document) -> Document:
    """The document FastAPI derived, completed (a copy)."""
    completed = copy.deepcopy(document)
    hoist_definitions(completed)
    add_problems(completed)
    add_deprecation_headers(completed)
    add_links(completed)
    return completed


def install_contract(app: FastAPI) -> None:
    """`app.openapi()` serves the completed document (built once, like FastAPI's own), and deprecated operations
    announce it in their answers (added first, so innermost: right around the routes that mark the request)."""
    app.add_middleware(DeprecationHeadersMiddleware)
    derive: Callable[[], Document] = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is None:
            app.openapi_schema = complete(derive())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
